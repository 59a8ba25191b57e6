#pragma once
/**
 * @file leak_check.h
 * WP_LEAK_CHECKED is defined in builds that run LeakSanitizer (ASan's, or its own), with its
 * interface (<sanitizer/lsan_interface.h>) included: LeakSanitizer finds what is reachable by
 * scanning stacks, globals and the heap, never memory mapped by hand, so a block that holds heap
 * pointers is registered as one of its root regions (index/page_block.cpp).
 */
#if defined(__SANITIZE_ADDRESS__)
#define WP_LEAK_CHECKED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define WP_LEAK_CHECKED 1
#endif
#endif
#ifdef WP_LEAK_CHECKED
#include <sanitizer/lsan_interface.h>
#endif
