package storage

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/klinecast/klinecast/messages"
)

// PutKlines stores closed bars, replacing any stored bar with the same
// (symbol, interval, open time): a late-trade correction is just another
// PutKlines. Every bar must be closed (the open bar lives in the shard and
// its snapshot) and have a valid symbol and interval; otherwise nothing is
// written. The bars are fsynced before PutKlines returns unless the node
// runs with DurabilityNone, so a later SaveSnapshot never covers trades
// whose closed bars could still be lost. Errors: ErrUnavailable (disk below
// the reserve, write or fsync failed; nothing was acknowledged, retry
// later: writes are idempotent), ErrClosed, argument errors.
func (s *Store) PutKlines(ctx context.Context, ks []messages.Kline) error {
	if len(ks) == 0 {
		return nil
	}
	kvs, err := klineKVs(ks)
	if err != nil {
		return err
	}
	if err := s.write(ctx, kvs, spaceFull, s.syncUnlessNone(), nil); err != nil {
		return fmt.Errorf("storage: PutKlines (%d bars): %w", len(ks), err)
	}
	return nil
}

// Write is a write in flight, returned by PutKlinesAsync.
type Write struct {
	s    *Store
	o    *op
	n    int
	once sync.Once
	err  error
}

// PutKlinesAsync is PutKlines without waiting and without its fsync: the
// bars are encoded and queued behind every write queued before, and Wait
// reports the outcome. A shard uses it to store closed bars without
// stalling its worker on a commit; since the committer writes in queue
// order, a SaveSnapshot queued later that succeeds (it is fsynced) also
// makes these bars durable, provided Wait reported no error. ks is not
// retained.
func (s *Store) PutKlinesAsync(ctx context.Context, ks []messages.Kline) (*Write, error) {
	kvs, err := klineKVs(ks)
	if err != nil {
		return nil, err
	}
	o := s.getOp()
	o.kind = opWrite
	o.kvs = kvs
	o.space = spaceFull
	if !s.gate.enter() {
		s.putOp(o)
		return nil, fmt.Errorf("storage: PutKlines: %w", ErrClosed)
	}
	err = s.enqueue(ctx, o)
	s.gate.exit()
	if err != nil {
		s.putOp(o)
		return nil, fmt.Errorf("storage: PutKlines: %w", err)
	}
	return &Write{s: s, o: o, n: len(ks)}, nil
}

// Wait blocks until the write is done and returns its error. It may be
// called any number of times, from any goroutines.
func (w *Write) Wait() error {
	w.once.Do(func() {
		<-w.o.done
		if w.o.err != nil {
			w.err = fmt.Errorf("storage: PutKlines (%d bars): %w", w.n, w.o.err)
		}
		w.s.putOp(w.o)
		w.o = nil
	})
	return w.err
}

// klineKVs validates and encodes closed bars as key/value writes.
func klineKVs(ks []messages.Kline) ([]kvOp, error) {
	keyLen, valLen := 0, 0
	for i := range ks {
		k := &ks[i]
		if err := checkSymbol(k.Symbol); err != nil {
			return nil, fmt.Errorf("storage: PutKlines[%d]: %w", i, err)
		}
		if !k.Interval.Valid() {
			return nil, fmt.Errorf("storage: PutKlines[%d] %s: invalid interval %d", i, k.Symbol, k.Interval)
		}
		if !k.Closed {
			return nil, fmt.Errorf("storage: PutKlines[%d] %s/%s/%d: bar is not closed", i, k.Symbol, k.Interval, k.OpenTime)
		}
		keyLen += 2 + len(k.Symbol) + 1 + 8
		valLen += headerLen + 160 + len(k.Symbol)
	}
	keys := make([]byte, 0, keyLen)
	vals := make([]byte, 0, valLen)
	// Offsets first, slices after: appends may move the buffers.
	type span struct{ k0, k1, v0, v1 int }
	spans := make([]span, len(ks))
	for i := range ks {
		k := &ks[i]
		sp := span{k0: len(keys), v0: len(vals)}
		keys = appendKlineKey(keys, k.Symbol, k.Interval, k.OpenTime)
		sp.k1 = len(keys)
		vals = beginRecord(vals, kindKline)
		vals = messages.AppendKlineMsgpack(vals, k)
		sp.v1 = len(vals)
		rec := vals[sp.v0:sp.v1]
		sealRecord(rec, finishRecord(rec), keys[sp.k0:sp.k1])
		spans[i] = sp
	}
	kvs := make([]kvOp, len(ks))
	for i, sp := range spans {
		kvs[i] = kvOp{key: keys[sp.k0:sp.k1], val: vals[sp.v0:sp.v1]}
	}
	return kvs, nil
}

// Klines appends to dst the stored bars of (symbol, iv) whose open time is
// in [start, end], in increasing open time, at most limit of them (limit
// <= 0: no limit), and returns the extended slice. Elements of dst beyond
// its length are reused. A corrupt bar fails the call with a *CorruptError.
func (s *Store) Klines(symbol string, iv messages.Interval, start, end int64, limit int, dst []messages.Kline) ([]messages.Kline, error) {
	if err := checkSeries(symbol, iv); err != nil {
		return dst, err
	}
	if start > end {
		return dst, nil
	}
	return s.scanKlines(symbol, iv, start, end, limit, false, dst)
}

// LastKlines appends to dst the last limit stored bars of (symbol, iv)
// whose open time is <= end (limit <= 0: all of them), in increasing open
// time. It serves "most recent bars" queries (Binance klines without
// startTime).
func (s *Store) LastKlines(symbol string, iv messages.Interval, end int64, limit int, dst []messages.Kline) ([]messages.Kline, error) {
	if err := checkSeries(symbol, iv); err != nil {
		return dst, err
	}
	base := len(dst)
	dst, err := s.scanKlines(symbol, iv, end, end, limit, true, dst)
	slices.Reverse(dst[base:])
	return dst, err
}

// scanKlines appends up to limit bars of (symbol, iv) to dst, starting at
// the bar opening at from (or the next one in scan order) and stopping
// after open time end: forward (Klines) or backward from end (LastKlines).
func (s *Store) scanKlines(symbol string, iv messages.Interval, from, end int64, limit int, reverse bool, dst []messages.Kline) ([]messages.Kline, error) {
	prefix := appendKlineSeriesPrefix(nil, symbol, iv)
	err := s.read(func() error {
		it := s.be.iter(iterOptions{prefix: prefix, reverse: reverse})
		defer it.close()
		n := 0
		for it.seek(appendKlineKey(nil, symbol, iv, from)); it.valid() && (limit <= 0 || n < limit); it.next() {
			var done bool
			var err error
			if dst, done, err = appendKline(it, dst, end); err != nil || done {
				return err
			}
			n++
		}
		return nil
	})
	return dst, err
}

// appendKline decodes the bar under it into a new element of dst. done
// reports a bar opening after end (the scan is over; dst is unchanged).
func appendKline(it kvIter, dst []messages.Kline, end int64) (_ []messages.Kline, done bool, err error) {
	key := it.key()
	_, _, open, ok := parseKlineKey(key)
	if !ok {
		return dst, false, corruptf(key, "malformed kline key")
	}
	if open > end {
		return dst, true, nil
	}
	if len(dst) < cap(dst) {
		dst = dst[:len(dst)+1]
	} else {
		dst = append(dst, messages.Kline{})
	}
	k := &dst[len(dst)-1]
	if err := it.value(func(v []byte) error { return decodeKlineRecord(key, v, k) }); err != nil {
		return dst[:len(dst)-1], false, err
	}
	return dst, false, nil
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

// Symbols returns the symbols that have stored bars, sorted. It costs one
// seek per symbol, not a scan of the bars.
func (s *Store) Symbols() ([]string, error) {
	var out []string
	err := s.read(func() error {
		var err error
		out, err = s.symbols(context.Background())
		return err
	})
	return out, err
}

func (s *Store) symbols(ctx context.Context) ([]string, error) {
	it := s.be.iter(iterOptions{prefix: []byte{prefixKline}})
	defer it.close()
	var out []string
	for it.seek([]byte{prefixKline}); it.valid(); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sym, _, _, ok := parseKlineKey(it.key())
		if !ok {
			return nil, corruptf(it.key(), "malformed kline key")
		}
		out = append(out, string(sym))
		it.seek(append(appendKlineSymbolPrefix(nil, string(sym)), 0xff))
	}
	slices.Sort(out)
	return out, nil
}
