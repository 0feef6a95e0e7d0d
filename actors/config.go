package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/klinecast/klinecast/actors/internal/shard"
	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// ClockMode selects what drives bar rollover when no trade does.
type ClockMode uint8

const (
	// ClockWall ticks just after every boundary of the smallest interval,
	// by the wall clock: live feeds.
	ClockWall ClockMode = iota
	// ClockEvent uses the largest trade time the node has accepted as the
	// clock, delivered to every shard in order with the trades: replays and
	// tests, whose results then depend only on the input.
	ClockEvent
)

// ParseClockMode parses "wall" or "event".
func ParseClockMode(s string) (ClockMode, error) {
	switch s {
	case "wall":
		return ClockWall, nil
	case "event":
		return ClockEvent, nil
	}
	return 0, fmt.Errorf("actors: unknown clock %q (want wall or event)", s)
}

func (m ClockMode) String() string {
	if m == ClockEvent {
		return "event"
	}
	return "wall"
}

// Config configures a Node. Start it from DefaultConfig; zero fields get the
// defaults documented on each field.
type Config struct {
	// Intervals aggregated for every symbol. Zero: messages.DefaultIntervals().
	Intervals []messages.Interval
	// Shards is the number of shard actors symbols are hashed onto. It is
	// part of the data layout (snapshots are per shard): changing it
	// needs an empty data dir. Zero: 64.
	Shards int
	// Cores is the number of pinned workers shard actors run on. Zero: all
	// CPUs the process may use.
	Cores int
	// Clock selects wall-clock or event-time rollover. Zero: ClockWall.
	Clock ClockMode
	// ClockMargin is how long after a bar boundary the wall clock ticks.
	// Zero: 10 ms. Negative is invalid.
	ClockMargin time.Duration
	// AllowedLateness: how far before its symbol's open bar a trade may be
	// and still amend a closed bar. Zero drops every late trade (counted).
	AllowedLateness time.Duration
	// Symbols, when non-empty, fixes the symbol set; other symbols are
	// rejected per trade. Empty: symbols are created on first trade.
	Symbols []string
	// MailboxSize bounds the ingest requests in flight, hence the parts
	// queued per shard (a request has at most one per shard). Ingest waits
	// up to BusyTimeout for room and then fails with ErrBusy: back-pressure
	// reaches the producer and no accepted trade is ever dropped.
	// Zero: 64.
	MailboxSize int
	// MaxInFlightTrades bounds the trades of the requests in flight (the
	// chunk messages queued in shard mailboxes point into them): a request
	// waits, as for MailboxSize, until there is room. A request larger than
	// the bound runs alone. Zero: DefaultMaxInFlightTrades.
	MaxInFlightTrades int
	// MaxQueries bounds the queries that ask shards (HasSymbol, Symbols; klines
	// read the shards' bar series and ask none) in flight, each a
	// message in a shard's mailbox; a query waits up to BusyTimeout for
	// room and then fails with ErrBusy. Zero: DefaultMaxQueries.
	MaxQueries int
	// BusyTimeout is how long Ingest and queries wait for room. Zero:
	// DefaultBusyTimeout.
	BusyTimeout time.Duration

	// CheckpointInterval is how often shards checkpoint their state (in
	// memory, or as a snapshot in the Store). Zero: 5 s.
	CheckpointInterval time.Duration
	// Store persists the WAL, closed bars and snapshots: every accepted
	// batch is in the WAL before Ingest answers, shards checkpoint as
	// snapshots, and Start recovers from snapshot + WAL. Nil runs a
	// memory-only node: closed bars are kept in memory and a restart
	// starts empty. The node does not close the Store.
	Store *storage.Store
	// MemoryRetention is how many closed bars a memory-only node keeps per
	// series (symbol and interval): at least this many of the latest, the
	// older ones are dropped a chunk at a time, so memory does not grow
	// with history. Zero: DefaultMemoryRetention (the REST API's largest
	// page); negative: keep every bar. A durable node keeps every bar (see
	// Store).
	MemoryRetention int
	// Retention is how long a durable node keeps the closed bars of each
	// interval listed (storage.Retention: "1s=7d,1m=365d"): every shard,
	// after a snapshot and at most once a minute, deletes the stored
	// chunks of its series whose bars all open more than the retention
	// before the series' last bar. Intervals not listed keep every bar.
	// Empty: keep everything. Every interval listed must be one of
	// Intervals (Validate), and Start refuses a Retention without a Store
	// (a memory-only node has MemoryRetention).
	Retention storage.Retention
	// Sink, if set, receives every Delta of every shard, at least once (see
	// DeltaSink). It is called on the shard's goroutine and must not block
	// or keep the Delta.
	Sink DeltaSink
	// Logger receives structured logs. Nil: none (discarded).
	Logger *slog.Logger
	// Now is the wall clock (trade validation and the wall clock mode).
	// Nil: time.Now.
	Now func() time.Time
}

// Defaults of Config, stated once: cmd's flags take theirs from here.
const (
	DefaultShards             = 64
	DefaultClockMargin        = 10 * time.Millisecond
	DefaultMailboxSize        = 64
	DefaultMaxInFlightTrades  = 1 << 22 // 4M trades, 320 MiB of the callers' memory
	DefaultMaxQueries         = 1024
	DefaultBusyTimeout        = 200 * time.Millisecond
	DefaultCheckpointInterval = 5 * time.Second
	DefaultMemoryRetention    = storage.MemoryRetentionDefault
)

// DefaultConfig returns the defaults: 64 shards, all cores, wall clock,
// the SPEC's default intervals, memory-only.
func DefaultConfig() Config {
	c := Config{}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if len(c.Intervals) == 0 {
		c.Intervals = messages.DefaultIntervals()
	}
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.ClockMargin == 0 {
		c.ClockMargin = DefaultClockMargin
	}
	if c.MailboxSize == 0 {
		c.MailboxSize = DefaultMailboxSize
	}
	if c.MaxInFlightTrades == 0 {
		c.MaxInFlightTrades = DefaultMaxInFlightTrades
	}
	if c.MaxQueries == 0 {
		c.MaxQueries = DefaultMaxQueries
	}
	if c.BusyTimeout == 0 {
		c.BusyTimeout = DefaultBusyTimeout
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.MemoryRetention == 0 {
		c.MemoryRetention = DefaultMemoryRetention
	}
	if c.Logger == nil {
		// An explicit choice, not a fallback to the process's global
		// logger: a library must not log where its caller did not say.
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// hooks are test seams: faults to inject and limits to lower. Production
// code never sets them (Start passes the zero value); tests reach them
// through export_test.go.
type hooks struct {
	// chunkTrades is how many trades a request chunk holds (0:
	// ingest.DefaultChunkTrades). Tests set it small to split parts into
	// many chunks.
	chunkTrades int
	// faults are injected into shards.
	faults shard.Faults
	// restartLimit is how many times an actor may restart within
	// restartWindow before its supervisor stops it (0: maxRestarts).
	restartLimit int
	// partFailureLimit is how many incarnations of a memory-only shard
	// may fail in a row applying one part before it gives the part up (0:
	// shard.DefaultPartFailureLimit).
	partFailureLimit int
}

func (h *hooks) setDefaults() {
	if h.restartLimit == 0 {
		h.restartLimit = maxRestarts
	}
	if h.partFailureLimit == 0 {
		h.partFailureLimit = shard.DefaultPartFailureLimit
	}
}

// MaxShards is the most shards a node may have.
const MaxShards = 4096

// FieldError is one invalid field of a Config: Field is its Go name
// (programs map it to their own flag names), Value what it held, Want what
// is valid. Validate joins them; find one with errors.As.
type FieldError struct {
	Field string
	Value any
	Want  string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s = %v, want %s", e.Field, e.Value, e.Want)
}

// Validate reports an invalid configuration: every invalid field, each as
// a *FieldError (or an interval error wrapping ErrUnknownInterval).
func (c *Config) Validate() error {
	var errs []error
	bad := func(field string, value any, want string) {
		errs = append(errs, &FieldError{Field: field, Value: value, Want: want})
	}
	if c.Shards < 1 || c.Shards > MaxShards {
		bad("Shards", c.Shards, fmt.Sprintf("1..%d", MaxShards))
	}
	if c.Cores < 0 {
		bad("Cores", c.Cores, "0 (every CPU) or more")
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"ClockMargin", c.ClockMargin}, {"AllowedLateness", c.AllowedLateness}, {"BusyTimeout", c.BusyTimeout},
		{"CheckpointInterval", c.CheckpointInterval}} {
		if d.v < 0 {
			bad(d.field, d.v, "a duration ≥ 0")
		}
	}
	if c.MailboxSize < 1 {
		bad("MailboxSize", c.MailboxSize, "≥ 1")
	}
	if c.MaxInFlightTrades < 1 {
		bad("MaxInFlightTrades", c.MaxInFlightTrades, "≥ 1")
	}
	if c.MaxQueries < 1 {
		bad("MaxQueries", c.MaxQueries, "≥ 1")
	}
	for _, iv := range c.Intervals {
		if !iv.Valid() {
			errs = append(errs, fmt.Errorf("%w: %v", messages.ErrUnknownInterval, iv))
		}
	}
	if err := c.Retention.Validate(); err != nil {
		bad("Retention", c.Retention, err.Error())
	} else {
		for iv := range c.Retention {
			if !slices.Contains(c.Intervals, iv) {
				bad("Retention", c.Retention, "intervals among those aggregated ("+messages.FormatIntervals(c.Intervals)+"), not "+iv.String())
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("actors: invalid config: %w", err)
	}
	return nil
}
