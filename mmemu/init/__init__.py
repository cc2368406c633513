"""The boot: init/main.c's start_kernel() order, driving arch/x86 and mm."""
