package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/messages"
)

// ingestScratch is the reusable state of one POST /api/v1/trades: a
// SymbolCache is not safe for concurrent use, so each request takes its
// own scratch (with its own cache) from a pool.
type ingestScratch struct {
	body     []byte
	trades   []messages.Trade
	index    []int // position in the request of each decoded trade
	rejected []actors.ItemError
	cache    *messages.SymbolCache
}

// maxPooledBody is the largest body buffer kept for reuse; a rare huge
// request does not pin its buffer in the pool.
const maxPooledBody = 4 << 20

func (h *handler) putScratch(s *ingestScratch) {
	if cap(s.body) > maxPooledBody {
		s.body = nil
		s.trades, s.index = nil, nil
	}
	s.rejected = nil // handed to the JSON encoder, never reused
	h.ingest.Put(s)
}

// postTrades ingests a JSON array or NDJSON of aggTrade events and answers
// {"accepted":N,"duplicates":D,"last_seq":S,"rejected":[{"index":i,"error":".."}]},
// where indices are positions in the request body (items that failed to
// parse count).
//
// Per-item problems (a field that does not parse, a trade the node rejects)
// are listed in "rejected" and the valid items are applied; a body that is
// not decodable as a whole is answered 400 and nothing is applied.
func (h *handler) postTrades(w http.ResponseWriter, r *http.Request) {
	limit := h.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, limit))
		return
	}
	s := h.ingest.Get().(*ingestScratch)
	defer h.putScratch(s)

	var err error
	s.body, err = readBody(s.body[:0], http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than the limit of %d bytes", limit))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reading the request body: %v", err))
		return
	}

	s.trades, s.index, s.rejected = s.trades[:0], s.index[:0], s.rejected[:0]
	err = messages.DecodeAggTradeBatch(s.body, s.cache, func(i int, t *messages.Trade, err error) error {
		if err != nil {
			s.rejected = append(s.rejected, actors.ItemError{Index: i, Error: err.Error()})
			return nil
		}
		s.trades = append(s.trades, *t)
		s.index = append(s.index, i)
		return nil
	})
	if err != nil {
		body := errorBody{Error: "malformed body, nothing applied: " + err.Error()}
		var de *messages.DecodeError
		if errors.As(err, &de) {
			body.Offset = &de.Offset
		}
		writeJSON(w, http.StatusBadRequest, body)
		return
	}

	var res actors.IngestResult
	if len(s.trades) > 0 {
		res, err = h.node.Ingest(r.Context(), s.trades)
		if errors.Is(err, actors.ErrPartFailed) {
			// A shard crashes on these trades every time: retrying them
			// unchanged would not help (500, no Retry-After). The other
			// shards' trades were applied; a retry counts them as
			// duplicates.
			h.serverError(w, r, http.StatusInternalServerError, err)
			return
		}
		if err != nil {
			// ErrBusy, ErrClosed, storage unavailable (storage.ErrUnavailable:
			// the WAL append failed), or the client gave up: all mean "not
			// taken now, retry" (ingest is idempotent by aggregate id, so a
			// retry of a partly applied batch is safe).
			h.serverError(w, r, http.StatusServiceUnavailable, err)
			return
		}
	}
	// The node indexes into the trades it was given: map back to the
	// request's positions, then merge with the parse errors (both sorted).
	for i := range res.Rejected {
		res.Rejected[i].Index = s.index[res.Rejected[i].Index]
	}
	if len(s.rejected) > 0 {
		res.Rejected = append(res.Rejected, s.rejected...)
		slices.SortFunc(res.Rejected, func(a, b actors.ItemError) int { return a.Index - b.Index })
	}
	if res.Rejected == nil {
		res.Rejected = []actors.ItemError{}
	}
	writeJSON(w, http.StatusOK, res)
}

// readBody reads r to the end into dst, sized from the Content-Length hint
// when there is one.
func readBody(dst []byte, r io.Reader, hint int64) ([]byte, error) {
	if hint > 0 && int64(cap(dst)) < hint+1 {
		// +1: the final Read that reports EOF must not force a growth.
		dst = make([]byte, 0, hint+1)
	}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}
