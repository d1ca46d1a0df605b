/* Entry of the SMP guest (multiboot, flat 32-bit, placed from its ELF program headers) and
 * the application processors' way in.
 *
 * The BSP enters at _start and runs smp_main(magic, info); its result goes to the
 * debug-exit port.
 *
 * An AP starts in real mode at the SIPI vector's page (CS = vector << 8, IP = 0). The
 * bytes from ap_tramp_start to ap_tramp_end are written for that: the BSP copies them to
 * a 4 KiB-aligned page below 1 MiB, and they only address themselves relative to CS, so
 * they run wherever they land. They load ap_gdt (in this image, reached by its linear
 * address once paging-less protected mode is on), switch to protected mode and jump to
 * ap_entry32, which takes a stack slot with LOCK XADD and calls ap_main().
 *
 * tramp_selftest() lets one CPU test that path where no second CPU exists (emu): it
 * leaves protected mode through a 16-bit stub copied below 64 KiB and enters the copied
 * trampoline in real mode at TRAMPOLINE_SEG:0, the state a SIPI leaves an AP in. */
#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00000000
#define AP_STACKS 64
#define AP_STACK_SIZE 4096
#define SEL_CODE 0x08
#define SEL_DATA 0x10
#define SEL_CODE16 0x18
#define SEL_DATA16 0x20
#define SELFTEST_STUB 0x7000        /* where smp_main copies selftest_stub */
#define TRAMPOLINE_SEG 0x0800       /* CS after a SIPI with vector 0x08 */

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .text
    .code32
    .globl _start
_start:
    movl $bsp_stack_top, %esp
    pushl %ebx
    pushl %eax
    call smp_main
    movw $0xf4, %dx
    outb %al, %dx
1:  jmp 1b

    .code16
    .globl ap_tramp_start, ap_tramp_end
ap_tramp_start:
    cli
    movw %cs, %ax
    movw %ax, %ds
    lgdtl ap_gdtr - ap_tramp_start
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $SEL_CODE, $ap_entry32
    .align 4
ap_gdtr:
    .word ap_gdt_end - ap_gdt - 1
    .long ap_gdt
ap_tramp_end:

    /* Entered in 16-bit protected mode at SELFTEST_STUB (CS base 0): 64 KiB data
     * segments, PE off, then the far jump a SIPI would have made. */
    .code16
    .globl selftest_stub, selftest_stub_end
selftest_stub:
    movw $SEL_DATA16, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr0, %eax
    andl $~1, %eax
    movl %eax, %cr0
    ljmp $TRAMPOLINE_SEG, $0
selftest_stub_end:

    .code32
    .globl tramp_selftest
tramp_selftest:
    cli
    lgdt ap_gdtr32
    ljmp $SEL_CODE16, $SELFTEST_STUB

ap_entry32:
    movw $SEL_DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl $1, %eax
    lock xaddl %eax, ap_next_slot
    cmpl $AP_STACKS, %eax
    jae 2f                      /* more APs than stacks: park without one */
    incl %eax
    shll $12, %eax
    addl $ap_stacks, %eax
    movl %eax, %esp
    call ap_main
2:  cli
    hlt
    jmp 2b

    /* Interrupt stubs of the "pit-ioapic" mode (smp_main.c); the last two never return. */
    .globl isr_timer, isr_pin0, isr_other
isr_timer:
    pushal
    cld
    call timer_isr
    popal
    iret
isr_pin0:
    cld
    call pin0_isr
isr_other:
    cld
    call other_isr

    .section .rodata
    .align 8
ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff    /* SEL_CODE: flat 32-bit code */
    .quad 0x00cf92000000ffff    /* SEL_DATA: flat data */
    .quad 0x00009a000000ffff    /* SEL_CODE16: 16-bit code, base 0, 64 KiB */
    .quad 0x000092000000ffff    /* SEL_DATA16: 16-bit data, base 0, 64 KiB */
ap_gdt_end:
ap_gdtr32:
    .word ap_gdt_end - ap_gdt - 1
    .long ap_gdt

    .data
    .align 4
ap_next_slot:
    .long 0

    .bss
    .align 16
    .space 8192
bsp_stack_top:
    .align 16
ap_stacks:
    .space AP_STACKS * AP_STACK_SIZE
    .section .note.GNU-stack, "", @progbits
