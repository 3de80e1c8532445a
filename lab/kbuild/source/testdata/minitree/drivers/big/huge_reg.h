a file standing in for a blob the snapshot lacks
