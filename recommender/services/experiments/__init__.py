"""Online experiments: traffic split between engines by visitor, and the results each variant
earns on real traffic (`manage`: create, list, stop; `assignment`: the request path's split;
`results`: counts and statistics, updated incrementally)."""
