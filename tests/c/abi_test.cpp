// Exercises the C ABI from C++ (C++17 and C++20, -fno-exceptions -fno-rtti): compiled with
// g++ and clang++ under ASan + UBSan by tests/integration/c_programs.rs.
// Prints "N passed, N failed".
#include <cstdlib>

#include "../c/check.h"
#include "mmo.h"

int main() {
    char *p = static_cast<char *>(std::malloc(16));
    CHECK(p != nullptr);
    // The byte just past a 16-byte block is ASan's redzone: poisoned only under ASan.
    CHECK(__asan_address_is_poisoned(p + 16) == 1);
    std::free(p);
    CHECK(mmo_abi_version() == MMO_ABI_VERSION);
    return CHECK_REPORT();
}
