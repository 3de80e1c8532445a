/* A stand-in for mm/page-writeback.c: the shape of the seed bug's window. */
int end_writeback(struct page *page)
{
	int ret;

	ret = clear_writeback(page);
	if (ret)
		account(page->owner);
	return ret;
}
