package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/klinecast/klinecast/messages"
)

// FormatVersion is the on-disk format this build reads and writes
// (doc.go); Open refuses a data dir of any other version.
const FormatVersion = formatVersion

// ErrLayoutMismatch reports that a data dir was written with another
// layout (shard count, intervals or format version) than the node asks
// for. It is returned wrapped in a *LayoutMismatchError.
var ErrLayoutMismatch = errors.New("storage: data dir layout mismatch")

var metaLayoutKey = []byte{prefixMeta, 'l', 'a', 'y', 'o', 'u', 't'}

// Layout is what a data dir's contents depend on: WAL records and
// snapshots are per shard (a symbol's shard is a hash modulo Shards), and
// snapshots hold the open bars of each interval. A node must read a data
// dir with the layout it was written with.
type Layout struct {
	// Shards is the number of shards, 1..MaxShard+1.
	Shards int
	// Intervals is the set of periods (order and duplicates do not
	// matter; the recorded layout holds them sorted and unique).
	Intervals []messages.Interval
	// FormatVersion is the storage format version. Zero in CheckLayout's
	// argument means this build's, FormatVersion; Layout reports the
	// stored one.
	FormatVersion int
}

// String renders l as "64 shards, intervals 1m,5m, format 2".
func (l Layout) String() string {
	return fmt.Sprintf("%d shards, intervals %s, format %d", l.Shards, messages.FormatIntervals(l.Intervals), l.FormatVersion)
}

// normalize sorts and deduplicates the intervals and fills the version.
func (l Layout) normalize() Layout {
	ivs := slices.Clone(l.Intervals)
	slices.Sort(ivs)
	l.Intervals = slices.Compact(ivs)
	if l.FormatVersion == 0 {
		l.FormatVersion = formatVersion
	}
	return l
}

func (l Layout) validate() error {
	if l.Shards < 1 || l.Shards > MaxShard+1 {
		return fmt.Errorf("storage: layout: %d shards, want 1..%d", l.Shards, MaxShard+1)
	}
	if len(l.Intervals) == 0 {
		return errors.New("storage: layout: no intervals")
	}
	for _, iv := range l.Intervals {
		if !iv.Valid() {
			return fmt.Errorf("storage: layout: %w: code %d", messages.ErrUnknownInterval, uint8(iv))
		}
	}
	return nil
}

// LayoutMismatchError says how a data dir's layout differs from the one a
// node asked for. errors.Is(err, ErrLayoutMismatch) reports true for it.
type LayoutMismatchError struct {
	// Dir is the data dir (Config.Dir; empty for an in-memory store).
	Dir string
	// Stored is the data dir's layout. For a data dir written before
	// layouts were recorded, only what its keys show is filled in
	// (Shards: the highest shard with data + 1; Intervals: nil).
	Stored Layout
	// Want is the layout asked for (normalised).
	Want Layout
	// Legacy is true when the data dir has no layout record.
	Legacy bool
	// Detail says what differs and what to do, for people.
	Detail string
}

func (e *LayoutMismatchError) Error() string {
	return fmt.Sprintf("storage: data dir %s %s", e.Dir, e.Detail)
}

// Is makes errors.Is(err, ErrLayoutMismatch) true.
func (e *LayoutMismatchError) Is(target error) bool { return target == ErrLayoutMismatch }

// Layout returns the layout recorded in the data dir; ok is false if none
// is (a new data dir, or one written before layouts were recorded).
func (s *Store) Layout() (l Layout, ok bool, err error) {
	err = s.read(func() error {
		l, ok, err = s.storedLayout()
		return err
	})
	return l, ok, err
}

func (s *Store) storedLayout() (Layout, bool, error) {
	var l Layout
	err := s.be.get(metaLayoutKey, func(v []byte) error {
		var err error
		l, err = decodeLayoutRecord(v)
		return err
	})
	if errors.Is(err, errNotFound) {
		return Layout{}, false, nil
	}
	if err != nil {
		return Layout{}, false, fmt.Errorf("storage: reading the layout record: %w", err)
	}
	l.FormatVersion = formatVersion // Open upgraded format 1 and refused any other
	return l, true, nil
}

// CheckLayout makes sure the data dir is read with the layout it was
// written with. Call it after Open and before loading snapshots or
// replaying the WAL.
//
//   - A data dir with a layout record: the record must equal want
//     (intervals compared as sets), else the error wraps
//     ErrLayoutMismatch (a *LayoutMismatchError) naming every difference
//     and what to do.
//   - A new data dir (no WAL record, snapshot, bar or checkpoint):
//     want is recorded, fsynced before CheckLayout returns.
//   - A data dir written before layouts were recorded (data but no
//     record): see doc.go, "Layout record". want is adopted only if the
//     snapshots prove the shard count: the previous version saved a
//     snapshot of every shard of the node, so a complete round is exactly
//     shards 0..n-1. Otherwise the data dir is refused, never misread.
//
// Once a layout is recorded it never changes: a node with another layout
// needs an empty data dir. CheckLayout is safe for concurrent use (the
// first to record wins; the others compare against it), but is meant to be
// called once, at start.
func (s *Store) CheckLayout(ctx context.Context, want Layout) error {
	if want.FormatVersion != 0 && want.FormatVersion != formatVersion {
		return &LayoutMismatchError{Dir: s.cfg.Dir, Want: want,
			Detail: fmt.Sprintf("is in storage format %d; this node asks for format %d", formatVersion, want.FormatVersion)}
	}
	want = want.normalize()
	if err := want.validate(); err != nil {
		return err
	}
	for {
		stored, ok, err := s.Layout()
		if err != nil {
			return err
		}
		if ok {
			return s.compareLayout(stored, want)
		}
		var shards []uint16
		var withSnapshot []uint16
		var other bool
		if err := s.read(func() error {
			var err error
			shards, withSnapshot, other, err = s.layoutEvidence(ctx)
			return err
		}); err != nil {
			return err
		}
		if len(shards) > 0 || other {
			if err := s.adoptLegacy(shards, withSnapshot, want); err != nil {
				return err
			}
		}
		err = s.write(ctx, []kvOp{{key: metaLayoutKey, val: layoutRecord(want)}}, spaceHalf, true, func(uint64) error {
			if _, ok, err := s.storedLayout(); err != nil || ok {
				return errLayoutRecorded
			}
			return nil
		})
		if errors.Is(err, errLayoutRecorded) {
			continue // another CheckLayout recorded one first: compare with it
		}
		if err != nil {
			return fmt.Errorf("storage: recording the data dir layout: %w", err)
		}
		if len(shards) > 0 || other {
			s.log.Warn("data dir had no layout record (written by an older klinecast): adopted this node's layout", "dir", s.cfg.Dir, "layout", want.String())
		}
		return nil
	}
}

var errLayoutRecorded = errors.New("storage: a layout was recorded meanwhile")

// compareLayout returns nil if stored equals want, else a mismatch naming
// every difference.
func (s *Store) compareLayout(stored, want Layout) error {
	var diffs, flags []string
	if stored.Shards != want.Shards {
		diffs = append(diffs, fmt.Sprintf("%d shards", want.Shards))
		flags = append(flags, fmt.Sprintf("--shards %d", stored.Shards))
	}
	if !slices.Equal(stored.Intervals, want.Intervals) {
		diffs = append(diffs, "intervals "+messages.FormatIntervals(want.Intervals))
		flags = append(flags, "--intervals "+messages.FormatIntervals(stored.Intervals))
	}
	if len(diffs) == 0 {
		return nil
	}
	return &LayoutMismatchError{Dir: s.cfg.Dir, Stored: stored, Want: want,
		Detail: fmt.Sprintf("was written with %d shards and intervals %s; this node is configured with %s: start with %s or use an empty --data-dir",
			stored.Shards, messages.FormatIntervals(stored.Intervals), strings.Join(diffs, " and "), strings.Join(flags, " "))}
}

// adoptLegacy decides whether a data dir without a layout record, whose
// WAL and snapshots use shards (sorted) and whose snapshots exist for
// withSnapshot (sorted), may be adopted with want.Shards.
func (s *Store) adoptLegacy(shards, withSnapshot []uint16, want Layout) error {
	if len(shards) == 0 {
		return nil // bars or checkpoints only: nothing depends on the shard count
	}
	highest := int(shards[len(shards)-1])
	mismatch := func(detail string) error {
		return &LayoutMismatchError{Dir: s.cfg.Dir, Stored: Layout{Shards: highest + 1, FormatVersion: formatVersion}, Want: want, Legacy: true,
			Detail: "has no layout record (written by an older klinecast) and " + detail}
	}
	if highest >= want.Shards {
		return mismatch(fmt.Sprintf("holds data of shard %d, so it was written with at least %d shards; this node is configured with %d shards: start with the --shards it was written with or use an empty --data-dir",
			highest, highest+1, want.Shards))
	}
	// INVARIANT: adopted only if every shard 0..want.Shards-1 has a
	// snapshot (a complete snapshot round of a want.Shards-shard node) and
	// none beyond has any data (checked above).
	if len(withSnapshot) != want.Shards {
		if len(withSnapshot) == highest+1 {
			return mismatch(fmt.Sprintf("holds snapshots of shards 0..%d, so it was written with %d shards; this node is configured with %d shards: start with --shards %d or use an empty --data-dir",
				highest, highest+1, want.Shards, highest+1))
		}
		return mismatch(fmt.Sprintf("holds snapshots of %d shards (highest %d), which does not prove it was written with the %d shards this node is configured with: start with the --shards it was written with (then every shard has a snapshot) or use an empty --data-dir",
			len(withSnapshot), highest, want.Shards))
	}
	return nil
}

// layoutEvidence lists the shards with WAL records or a snapshot, the
// shards with a snapshot, and whether bars (chunks, or a format-1 dir's
// per-bar klines) or checkpoints exist.
func (s *Store) layoutEvidence(ctx context.Context) (shards, withSnapshot []uint16, other bool, err error) {
	shards, err = s.walShards(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	it := s.be.iter(iterOptions{prefix: []byte{prefixSnapshot}})
	for it.seek([]byte{prefixSnapshot}); it.valid(); it.next() {
		sh, ok := parseSnapshotKey(it.key())
		if !ok {
			it.close()
			return nil, nil, false, corruptf(it.key(), "malformed snapshot key")
		}
		withSnapshot = append(withSnapshot, sh)
	}
	it.close()
	shards = append(shards, withSnapshot...)
	slices.Sort(shards)
	shards = slices.Compact(shards)
	for _, p := range []byte{prefixChunk, prefixKline, prefixCheckpoint} {
		it := s.be.iter(iterOptions{prefix: []byte{p}})
		it.seek([]byte{p})
		other = other || it.valid()
		it.close()
	}
	return shards, withSnapshot, other, nil
}

// layoutRecord encodes meta/layout: shards uint32 | n uint8 | n interval
// codes (sorted, unique).
func layoutRecord(l Layout) []byte {
	p := binary.BigEndian.AppendUint32(nil, uint32(l.Shards))
	p = append(p, byte(len(l.Intervals)))
	for _, iv := range l.Intervals {
		p = append(p, byte(iv))
	}
	return appendRecord(nil, kindMeta, metaLayoutKey, p)
}

func decodeLayoutRecord(val []byte) (Layout, error) {
	p, err := openRecord(metaLayoutKey, val, kindMeta)
	if err != nil {
		return Layout{}, err
	}
	if len(p) < 5 || len(p) != 5+int(p[4]) {
		return Layout{}, corruptf(metaLayoutKey, "layout record of %d bytes", len(p))
	}
	l := Layout{Shards: int(binary.BigEndian.Uint32(p))}
	for _, c := range p[5:] {
		l.Intervals = append(l.Intervals, messages.Interval(c))
	}
	if err := l.validate(); err != nil {
		return Layout{}, corruptf(metaLayoutKey, "%w", err)
	}
	return l, nil
}
