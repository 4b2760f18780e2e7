/* SPDX-License-Identifier: Apache-2.0 */
#ifndef VMM_COMPILER_H
#define VMM_COMPILER_H

#include <stddef.h>
#include <stdint.h>

#define WUR         __attribute__((warn_unused_result))
#define PACKED      __attribute__((packed))
#define UNUSED      __attribute__((unused))
#define PRINTF(a, b) __attribute__((format(printf, a, b)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a)   (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))
#define IS_ALIGNED(x, a) (((x) & ((__typeof__(x))(a)-1)) == 0)
#define IS_POW2(x)       ((x) != 0 && ((x) & ((x)-1)) == 0)
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

#define KiB (1024ULL)
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)

#endif
