package messages

// ShardOf maps a symbol to one of shards buckets with FNV-1a, a stable
// hash: the same in every process and version. Shard placement, the data
// dir's layout and which shard's bar series holds a symbol depend on it, so it
// must never change (a test pins its values). It allocates nothing.
func ShardOf(symbol string, shards int) int {
	h := uint32(2166136261)
	for i := 0; i < len(symbol); i++ {
		h ^= uint32(symbol[i])
		h *= 16777619
	}
	return int(h % uint32(shards))
}
