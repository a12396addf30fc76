/* Minimal test reporting for the C and C++ programs in tests/c: each CHECK counts a pass or a
 * failure (printing the failed expression), and CHECK_REPORT prints the closing line
 * "N passed, N failed" that the test runner and CI read. Usable from C11 and C++17. */
#ifndef MMO_TESTS_CHECK_H
#define MMO_TESTS_CHECK_H

#include <stdio.h>

static int check_passed = 0;
static int check_failed = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            check_passed++;                                                          \
        } else {                                                                     \
            check_failed++;                                                          \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* CHECK that an mmo_ call returned `expected`, printing both codes and the last error text
 * otherwise. Needs mmo.h included before the use. */
#define CHECK_RESULT(call, expected)                                                          \
    do {                                                                                      \
        unsigned check_got_ = (unsigned)(call);                                              \
        unsigned check_want_ = (unsigned)(expected);                                         \
        if (check_got_ == check_want_) {                                                      \
            check_passed++;                                                                   \
        } else {                                                                              \
            char check_msg_[256] = {0};                                                       \
            size_t check_len_ = 0;                                                            \
            (void)mmo_last_error_message(check_msg_, sizeof check_msg_, &check_len_);        \
            check_failed++;                                                                   \
            fprintf(stderr, "%s:%d: %s returned %u, expected %u (last error: %s)\n", __FILE__, \
                    __LINE__, #call, check_got_, check_want_, check_msg_);                    \
        }                                                                                     \
    } while (0)

#define CHECK_OK(call) CHECK_RESULT(call, MMO_RESULT_OK)

#define CHECK_REPORT()                                            \
    (printf("%d passed, %d failed\n", check_passed, check_failed), \
     check_failed == 0 ? 0 : 1)

/* Proves AddressSanitizer is active at run time (a heap redzone reads as poisoned); linking
 * fails if the ASan runtime is absent. */
#ifdef __cplusplus
extern "C" {
#endif
int __asan_address_is_poisoned(void const volatile *addr);
#ifdef __cplusplus
}
#endif

#endif
