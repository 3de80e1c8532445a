/* A stand-in header: the debug patch below expects a helper this tree does not have. */
static inline void mod_memcg_page_state(struct page *page, int idx, int val)
{
	if (page->mem_cgroup)
		mod_memcg_state(page->mem_cgroup, idx, val);
}
