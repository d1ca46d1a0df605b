/* A small AML byte-code builder (ACPI 6.x, chapter 20) for the DSDT the machine generates:
 * names, integers in their shortest encoding, strings, EISA IDs, buffers, packages and the
 * nested objects (Scope, Device, Method) whose PkgLength is only known once their content
 * is written. Also the few resource descriptors (chapter 6.4) the machine's _CRS objects
 * need.
 *
 * Errors stick: after an allocation failure or bad use (a name that is not an ACPI name,
 * too deep nesting, an end without a begin) every call is a no-op and aml_error() says so,
 * so a table is built without checking each call. */
#ifndef VMCORE_MACHINE_AML_H
#define VMCORE_MACHINE_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 16

struct aml {
    uint8_t *buf;
    size_t len, cap;
    size_t open[AML_MAX_DEPTH]; /* where each open object's content starts */
    unsigned depth;
    int error;                  /* the first failure (sticky), or 0 */
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
/* VMCORE_ENOMEM after an allocation failure, VMCORE_EINVAL after bad use, else 0. */
int aml_error(const struct aml *a);

/* Raw bytes (also how resource templates are assembled before aml_buffer wraps them). */
void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_u8(struct aml *a, uint8_t v);
void aml_u16(struct aml *a, uint16_t v);
void aml_u32(struct aml *a, uint32_t v);
void aml_u64(struct aml *a, uint64_t v);

/* A NameString: "\\" (root) and "^" (parent) prefixes, then segments of up to four
 * characters separated by dots ("\\_SB.PCI0", "_HID"); short segments are padded with
 * '_'. */
void aml_name(struct aml *a, const char *path);
/* Zero/One/Ones or the smallest of Byte/Word/DWord/QWord. */
void aml_int(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* The 32-bit compressed EISA ID of "PNP0A08" (three letters, four hex digits). */
void aml_eisaid(struct aml *a, const char *id);
/* Buffer(n) { bytes }. */
void aml_buffer(struct aml *a, const void *data, size_t n);
/* Name(path, <data object that follows>). */
void aml_name_decl(struct aml *a, const char *path);

/* Nested objects: content follows, then aml_end(). */
void aml_scope(struct aml *a, const char *path);
void aml_device(struct aml *a, const char *path);
void aml_method(struct aml *a, const char *path, unsigned nargs, bool serialized);
void aml_package(struct aml *a, unsigned nelems);
void aml_end(struct aml *a);

/* Resource descriptors for a ResourceTemplate (assembled with aml_bytes into a separate
 * struct aml, closed with aml_res_end, then passed to aml_buffer). */
/* IO(Decode16, min, min, align, len): a fixed 16-bit decoded port range. */
void aml_res_io(struct aml *a, uint16_t base, uint8_t align, uint8_t len);
/* IRQNoFlags() { irq }: an edge-triggered, active-high ISA IRQ. */
void aml_res_irq(struct aml *a, unsigned irq);
/* Memory32Fixed(ReadWrite, base, len). */
void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len);
/* Word/DWord/QWord address space descriptors of a bridge's windows (ResourceProducer,
 * MinFixed, MaxFixed, PosDecode) for [min, max]. */
enum aml_space { AML_SPACE_MEM = 0, AML_SPACE_IO = 1, AML_SPACE_BUS = 2 };
void aml_res_word(struct aml *a, enum aml_space space, uint16_t min, uint16_t max);
void aml_res_dword_mem(struct aml *a, uint32_t min, uint32_t max);
void aml_res_qword_mem(struct aml *a, uint64_t min, uint64_t max);
/* The end tag (checksum 0: "treat as summed"). */
void aml_res_end(struct aml *a);

#endif
