print("kipvs")
