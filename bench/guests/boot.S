/* Multiboot v1 entry for the bench guests. The header uses the a.out kludge (flag 16) so
 * that loaders which read only the header (ours, QEMU -kernel) and loaders which read the
 * ELF program headers place the image identically: one contiguous segment at 1 MiB.
 * The loader leaves us in 32-bit protected mode with flat segments; we only set a stack,
 * call guest_main(), and hand its return value to the debug-exit port. */
#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00010000

    .section .multiboot, "a"
    .align 4
mb_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long mb_header          /* header_addr */
    .long __image_start      /* load_addr */
    .long __data_end         /* load_end_addr */
    .long __bss_end          /* bss_end_addr */
    .long _start             /* entry_addr */

    .text
    .code32
    .globl _start
_start:
    cli
    movl $stack_top, %esp
    xorl %ebp, %ebp
    call guest_main
    movw $0xf4, %dx
    outb %al, %dx
1:  hlt
    jmp 1b

    .bss
    .align 16
    .space 16384
stack_top:
    .section .note.GNU-stack, "", @progbits
