"""What the operations dashboard shows, one module per page (the views are in
recommender/dashboard/). Every read is a bounded, indexed query or a small rollup."""
