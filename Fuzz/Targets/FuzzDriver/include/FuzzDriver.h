#ifndef KIPVS_FUZZ_DRIVER_H
#define KIPVS_FUZZ_DRIVER_H

/* libFuzzer's driver over the target's LLVMFuzzerTestOneInput, for a program whose main is its own:
 * SwiftPM gives every executable one, so the main that libFuzzer brings is never linked. */
int fuzz_driver_main(int argc, char **argv);

#endif
