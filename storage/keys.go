package storage

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"

	"github.com/klinecast/klinecast/messages"
)

// Key prefixes: the first byte of every key names its family (doc.go).
const (
	prefixCheckpoint = 'c'
	prefixKline      = 'k' // format 1 only
	prefixMeta       = 'm'
	prefixSnapshot   = 's'
	prefixWAL        = 'w'
)

// MaxShard is the largest shard number (shards are stored as uint16).
const MaxShard = math.MaxUint16

// MaxConsumerLen bounds consumer names in bytes.
const MaxConsumerLen = 255

const walKeyLen = 1 + 2 + 8

// Meta keys.
var (
	metaFormatKey = []byte{prefixMeta, 'f', 'o', 'r', 'm', 'a', 't'}
	metaSeqsKey   = []byte{prefixMeta, 's', 'e', 'q', 's'}
)

func appendWALKey(b []byte, shard uint16, seq uint64) []byte {
	b = append(b, prefixWAL)
	b = binary.BigEndian.AppendUint16(b, shard)
	return binary.BigEndian.AppendUint64(b, seq)
}

func walShardPrefix(shard uint16) []byte {
	return binary.BigEndian.AppendUint16([]byte{prefixWAL}, shard)
}

// parseWALKey returns the shard and seq of a WAL key.
func parseWALKey(k []byte) (shard uint16, seq uint64, ok bool) {
	if len(k) != walKeyLen || k[0] != prefixWAL {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(k[1:3]), binary.BigEndian.Uint64(k[3:]), true
}

// flipTime maps an int64 to a uint64 whose big-endian bytes sort in the
// same order as the signed value (negative times before positive ones).
func flipTime(t int64) uint64 { return uint64(t) ^ (1 << 63) }

func unflipTime(u uint64) int64 { return int64(u ^ (1 << 63)) }

// Kline keys exist only in format-1 data dirs (one per bar), which Open
// upgrades (migrate.go).

// Series keys: prefix | len uint8 | symbol | interval uint8 | time (the
// int64 flipped, big-endian). Chunk keys ('b', the chunk's first open
// time) and format-1 kline keys ('k', the bar's open time) share the form.

// appendSeriesPrefix appends prefix | len | symbol | interval.
func appendSeriesPrefix(b []byte, prefix byte, symbol string, iv messages.Interval) []byte {
	b = append(b, prefix, byte(len(symbol)))
	b = append(b, symbol...)
	return append(b, byte(iv))
}

func appendSeriesKey(b []byte, prefix byte, symbol string, iv messages.Interval, t int64) []byte {
	b = appendSeriesPrefix(b, prefix, symbol, iv)
	return binary.BigEndian.AppendUint64(b, flipTime(t))
}

// parseSeriesKey splits a series key of family prefix; symbol aliases k.
func parseSeriesKey(k []byte, prefix byte) (symbol []byte, iv messages.Interval, t int64, ok bool) {
	if len(k) < 3 || k[0] != prefix {
		return nil, 0, 0, false
	}
	n := int(k[1])
	if len(k) != 2+n+1+8 {
		return nil, 0, 0, false
	}
	return k[2 : 2+n], messages.Interval(k[2+n]), unflipTime(binary.BigEndian.Uint64(k[3+n:])), true
}

// appendKlineSeriesPrefix appends 'k' | len | symbol | interval.
func appendKlineSeriesPrefix(b []byte, symbol string, iv messages.Interval) []byte {
	return appendSeriesPrefix(b, prefixKline, symbol, iv)
}

// appendKlineKey appends a format-1 kline key (tests build old dirs).
func appendKlineKey(b []byte, symbol string, iv messages.Interval, openTime int64) []byte {
	return appendSeriesKey(b, prefixKline, symbol, iv, openTime)
}

// parseKlineKey splits a kline key. symbol aliases k.
func parseKlineKey(k []byte) (symbol []byte, iv messages.Interval, openTime int64, ok bool) {
	return parseSeriesKey(k, prefixKline)
}

func snapshotKey(shard uint16) []byte {
	return binary.BigEndian.AppendUint16([]byte{prefixSnapshot}, shard)
}

func parseSnapshotKey(k []byte) (shard uint16, ok bool) {
	if len(k) != 3 || k[0] != prefixSnapshot {
		return 0, false
	}
	return binary.BigEndian.Uint16(k[1:]), true
}

func checkpointKey(consumer string) []byte {
	return append([]byte{prefixCheckpoint}, consumer...)
}

// formatKey renders a key for logs and errors: a readable form followed by
// the raw bytes in hex, e.g. "wal/shard=3/seq=42 (770003000000000000002a)".
func formatKey(k []byte) string {
	return describeKey(k) + " (" + hex.EncodeToString(k) + ")"
}

func describeKey(k []byte) string {
	if len(k) == 0 {
		return "<empty key>"
	}
	switch k[0] {
	case prefixWAL:
		if shard, seq, ok := parseWALKey(k); ok {
			return fmt.Sprintf("wal/shard=%d/seq=%d", shard, seq)
		}
	case prefixKline:
		if sym, iv, open, ok := parseKlineKey(k); ok {
			return fmt.Sprintf("kline/%s/%s/%d", sym, iv, open)
		}
	case prefixChunk:
		if sym, iv, first, ok := parseChunkKey(k); ok {
			return fmt.Sprintf("chunk/%s/%s/%d", sym, iv, first)
		}
	case prefixSnapshot:
		if shard, ok := parseSnapshotKey(k); ok {
			return fmt.Sprintf("snapshot/shard=%d", shard)
		}
	case prefixCheckpoint:
		return "checkpoint/" + strconv.Quote(string(k[1:]))
	case prefixMeta:
		return "meta/" + string(k[1:])
	}
	return "unknown"
}

func checkShard(shard int) (uint16, error) {
	if shard < 0 || shard > MaxShard {
		return 0, fmt.Errorf("storage: shard %d out of range [0, %d]", shard, MaxShard)
	}
	return uint16(shard), nil
}

func checkSymbol(symbol string) error {
	if symbol == "" || len(symbol) > messages.MaxSymbolLen {
		return fmt.Errorf("storage: symbol %q: length must be 1..%d bytes", symbol, messages.MaxSymbolLen)
	}
	return nil
}

func checkSeries(symbol string, iv messages.Interval) error {
	if err := checkSymbol(symbol); err != nil {
		return err
	}
	if !iv.Valid() {
		return fmt.Errorf("storage: invalid interval %d", iv)
	}
	return nil
}

func checkConsumer(consumer string) error {
	if consumer == "" || len(consumer) > MaxConsumerLen {
		return fmt.Errorf("storage: consumer name %q: length must be 1..%d bytes", consumer, MaxConsumerLen)
	}
	return nil
}
