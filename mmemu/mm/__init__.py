"""The mm subsystems: memblock, zones and struct page, GFP, the page
allocator, slab, vmalloc and highmem, in the order data flows through them."""
