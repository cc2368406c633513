"""Models of kernel/ (the core kernel, outside mm/): atomic context and the
sleeping-in-atomic checks of kernel/sched/core.c."""
