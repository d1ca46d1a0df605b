/* The built-in container init (ct_init.c, built to CT_INIT_PATH) as bytes of the library:
 * ct_init_image .. ct_init_image_end. container.c copies them into a sealed memfd. */
    .section .rodata
    .balign 16
    .global ct_init_image
    .hidden ct_init_image
    .global ct_init_image_end
    .hidden ct_init_image_end
ct_init_image:
    .incbin CT_INIT_PATH
ct_init_image_end:
    .section .note.GNU-stack,"",@progbits
