; IOAPIC guest (format raw, mode protected, load_address 0x100000): takes its interrupts
; through the IOAPIC and the local APIC with both PICs and LINT0 masked, as Linux runs in
; IOAPIC mode: three PIT ticks on pin 2 (ISA IRQ 0, edge), then one COM1 "transmitter
; empty" interrupt on pin 4 programmed level-triggered, whose handler quiets the UART
; before its EOI, so remote IRR must read clear afterwards. Prints "ioapic ok" and exits 0;
; 1 if remote IRR stayed set, 2 if an interrupt came through the PIC (vector 8) instead.
%include "com1.inc"
bits 32
org 0x100000
IOAPIC  equ 0xfec00000
LAPIC   equ 0xfee00000
IDT     equ 0x101000

start:  mov esp, 0x80000
        mov eax, timer
        mov ecx, 0x30
        call setgate
        mov eax, serial
        mov ecx, 0x51
        call setgate
        mov eax, via_pic
        mov ecx, 0x08
        call setgate
        lidt [idtr]
        mov al, 0xff                    ; mask both PICs
        out 0x21, al
        out 0xa1, al
        mov dword [LAPIC + 0xf0], 0x1ff     ; SVR: enabled, spurious vector 0xff
        mov dword [LAPIC + 0x350], 0x10700  ; LINT0: ExtINT, masked
        mov eax, 0x15                   ; pin 2, high half: destination APIC 0
        xor ebx, ebx
        call ioapic_write
        mov eax, 0x14                   ; pin 2, low half: vector 0x30, edge, unmasked
        mov ebx, 0x30
        call ioapic_write
        mov al, 0x34                    ; PIT channel 0: mode 2, low then high byte
        out 0x43, al
        mov ax, 1193                    ; 1 ms
        out 0x40, al
        mov al, ah
        out 0x40, al
        sti
.tick:  hlt
        cmp dword [ticks], 3
        jb .tick
        cli
        mov eax, 0x14                   ; pin 2 masked
        mov ebx, 0x10030
        call ioapic_write
        mov eax, 0x19                   ; pin 4: destination APIC 0
        xor ebx, ebx
        call ioapic_write
        mov eax, 0x18                   ; pin 4: vector 0x51, level-triggered, unmasked
        mov ebx, 0x8051
        call ioapic_write
        mov dx, COM1 + 4                ; MCR: OUT2 connects the UART's interrupt line
        mov al, 0x08
        out dx, al
        mov dx, COM1 + 1                ; IER: interrupt when the transmitter is empty
        mov al, 0x02
        out dx, al
        sti
.ser:   hlt
        cmp dword [serials], 1
        jb .ser
        cli
        mov eax, 0x18
        call ioapic_read
        test eax, 0x4000                ; remote IRR
        jz .ok
        EXIT 1
.ok:    mov esi, msg
        call puts
        EXIT 0

ioapic_write:                           ; register eax := ebx
        mov [IOAPIC], eax
        mov [IOAPIC + 0x10], ebx
        ret
ioapic_read:                            ; eax := register eax
        mov [IOAPIC], eax
        mov eax, [IOAPIC + 0x10]
        ret
setgate:                                ; IDT gate ecx -> handler eax
        lea edi, [IDT + ecx * 8]
        mov [edi], ax
        mov dx, cs
        mov [edi + 2], dx
        mov word [edi + 4], 0x8e00
        shr eax, 16
        mov [edi + 6], ax
        ret

timer:  inc dword [ticks]
        mov dword [LAPIC + 0xb0], 0     ; EOI
        iret
serial: push eax
        push edx
        mov dx, COM1 + 2                ; reading IIR acknowledges "transmitter empty"
        in al, dx
        mov dx, COM1 + 1                ; and no more of them: the line goes low
        xor al, al
        out dx, al
        inc dword [serials]
        mov dword [LAPIC + 0xb0], 0     ; EOI of a level vector: the IOAPIC hears it
        pop edx
        pop eax
        iret
via_pic: EXIT 2

DEFINE_PUTS
msg:    db "ioapic ok", 10, 0
align 4
ticks:  dd 0
serials: dd 0
idtr:   dw 256 * 8 - 1
        dd IDT
