import FuzzDriver
#if canImport(Glibc)
import Glibc
#endif

/// Makes `value` be computed: a result nobody reads may be optimised away, and with it the very
/// trap (an overflow, an index out of range) the fuzzer is looking for.
@inline(never) @_optimize(none)
public func use<T>(_ value: T) {}

/// libFuzzer over the target's `LLVMFuzzerTestOneInput`, with the command line's corpora and options.
public func runFuzzer() -> Never {
    exit(fuzz_driver_main(CommandLine.argc, CommandLine.unsafeArgv))
}
