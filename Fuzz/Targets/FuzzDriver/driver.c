#include <stddef.h>
#include <stdint.h>
#include "FuzzDriver.h"

/* compiler-rt's FuzzerInterface.h; -sanitize=fuzzer links libFuzzer in. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
/* Each target's, written in Swift with @_cdecl. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int fuzz_driver_main(int argc, char **argv) {
    return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
}
