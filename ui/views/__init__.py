"""One module per page; each page's data is also served as JSON at a sibling URL."""
