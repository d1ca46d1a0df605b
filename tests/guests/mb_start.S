/* Entry of the multiboot guest. The header asks for page-aligned modules and memory
 * information and has no address fields, so the loader must place the image from its
 * ELF program headers. guest_main(magic, info)'s result goes to the debug-exit port. */
#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00000003

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .text
    .code32
    .globl _start
_start:
    movl $stack_top, %esp
    pushl %ebx
    pushl %eax
    call guest_main
    movw $0xf4, %dx
    outb %al, %dx
1:  jmp 1b

    .bss
    .align 16
    .space 8192
stack_top:
    .section .note.GNU-stack, "", @progbits
