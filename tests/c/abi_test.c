/* Exercises the C ABI from C11: compiled with gcc and clang under ASan + UBSan by
 * tests/integration/c_programs.rs. Prints "N passed, N failed". */
#include <stdint.h>
#include <stdlib.h>

#include "../c/check.h"
#include "mmo.h"

static void sanitizer_is_active(void) {
    char *p = (char *)malloc(16);
    CHECK(p != NULL);
    /* The byte just past a 16-byte block is ASan's redzone: poisoned only under ASan. */
    CHECK(__asan_address_is_poisoned(p) == 0);
    CHECK(__asan_address_is_poisoned(p + 16) == 1);
    free(p);
}

static void abi_version(void) {
    CHECK(mmo_abi_version() == MMO_ABI_VERSION);
}

int main(void) {
    sanitizer_is_active();
    abi_version();
    return CHECK_REPORT();
}
