// Package cluster owns node membership (hashicorp/memberlist), shard
// placement by rendezvous hashing and shard handoff between nodes.
//
// cluster may import actors, storage and messages; it must not import cmd.
package cluster
