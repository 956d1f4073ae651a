// Declarations only (include/FuzzerDriver.h); the definition is in libFuzzer (-sanitize=fuzzer).
#include "FuzzerDriver.h"
