package messages

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Binance public-data aggTrades CSV:
//
//	agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker[,is_best_match]
//	26129,0.01633102,4.70443515,27781,27781,1498793709153,True,True
//
// The header line is optional (a first line whose first field is not a
// number is taken as the header). Booleans are true/false/True/False.
// transact_time is in ms; a value >= 1e15 (16 digits) is in µs, as in
// Binance's files since 2025, and is converted to ms. Blank lines are
// skipped, CRLF line ends are accepted. The file carries no symbol: the
// reader is given one.

// ParseError reports a CSV problem: `file:line: field: reason`. File is
// whatever the caller set (the reader's File field, or by hand); Line is
// 1-based, 0 when unknown; Field is the column name, "" for the whole line.
type ParseError struct {
	File  string
	Line  int
	Field string
	Err   error
}

func (e *ParseError) Error() string {
	var b []byte
	switch {
	case e.File != "" && e.Line > 0:
		b = fmt.Appendf(b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b = fmt.Appendf(b, "%s: ", e.File)
	case e.Line > 0:
		b = fmt.Appendf(b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b = fmt.Appendf(b, "%s: ", e.Field)
	}
	if e.Err != nil {
		b = append(b, e.Err.Error()...)
	}
	return string(b)
}

func (e *ParseError) Unwrap() error { return e.Err }

// aggTradeCSVColumns names the columns, in order.
var aggTradeCSVColumns = [...]string{"agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time", "is_buyer_maker", "is_best_match"}

// aggTradeCSVBufSize is the bufio buffer of AggTradeCSVReader: large reads
// keep syscalls rare on multi-GB files; a row is < 100 bytes.
const aggTradeCSVBufSize = 1 << 20

// AggTradeCSVReader reads Binance aggTrades CSV rows into Trades without
// allocating per row.
type AggTradeCSVReader struct {
	// File, if set, is copied into every *ParseError.
	File string

	r      *bufio.Reader
	symbol string
	line   int
	long   []byte // reused for lines that do not fit the bufio buffer
	first  bool   // the next non-blank line is the first one (header check)
}

// NewAggTradeCSVReader returns a reader of r whose trades all carry symbol
// (upper-cased). r is buffered internally.
func NewAggTradeCSVReader(r io.Reader, symbol string) *AggTradeCSVReader {
	return newAggTradeCSVReaderSize(r, symbol, aggTradeCSVBufSize)
}

// newAggTradeCSVReaderSize lets tests use a small buffer, which exercises
// the long-line path and keeps fuzzing fast.
func newAggTradeCSVReaderSize(r io.Reader, symbol string, size int) *AggTradeCSVReader {
	return &AggTradeCSVReader{
		r:      bufio.NewReaderSize(r, size),
		symbol: NormalizeSymbol(symbol),
		first:  true,
	}
}

// Line returns the 1-based number of the line last read (0 before the first).
func (c *AggTradeCSVReader) Line() int { return c.line }

// Next reads the next row into t. It returns io.EOF after the last row, a
// *ParseError for a bad row (the reader stays usable: the next call reads
// the next line), or the underlying reader's error wrapped in a *ParseError.
// EventTime is 0: the file has none.
func (c *AggTradeCSVReader) Next(t *Trade) error {
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		line = trimCR(line)
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if c.first {
			c.first = false
			if !startsWithNumber(line) {
				continue // header
			}
		}
		return c.parseRow(line, t)
	}
}

// readLine returns the next line without its '\n', a view valid until the
// next call.
func (c *AggTradeCSVReader) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err == nil || (err == io.EOF && len(line) > 0) {
		c.line++
		return trimLF(line), nil
	}
	if err == io.EOF {
		return nil, io.EOF
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return nil, &ParseError{File: c.File, Line: c.line + 1, Err: fmt.Errorf("reading: %w", err)}
	}
	// A line longer than the buffer: gather it in c.long (reused).
	c.long = append(c.long[:0], line...)
	for {
		line, err = c.r.ReadSlice('\n')
		c.long = append(c.long, line...)
		switch {
		case err == nil || err == io.EOF:
			c.line++
			return trimLF(c.long), nil
		case !errors.Is(err, bufio.ErrBufferFull):
			return nil, &ParseError{File: c.File, Line: c.line + 1, Err: fmt.Errorf("reading: %w", err)}
		}
	}
}

func trimLF(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// startsWithNumber reports whether the first field is a (possibly negative)
// integer or decimal: a header's first field is a name.
func startsWithNumber(line []byte) bool {
	field := line
	if i := bytes.IndexByte(line, ','); i >= 0 {
		field = line[:i]
	}
	if len(field) > 0 && (field[0] == '-' || field[0] == '+') {
		field = field[1:]
	}
	if len(field) == 0 {
		return false
	}
	for _, c := range field {
		if (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

func (c *AggTradeCSVReader) fail(field string, err error) error {
	return &ParseError{File: c.File, Line: c.line, Field: field, Err: err}
}

// csvFields splits line at commas into dst and returns the number of
// fields, which may exceed len(dst) (the extra ones are not stored).
func csvFields(line []byte, dst [][]byte) int {
	n := 0
	for {
		i := bytes.IndexByte(line, ',')
		field := line
		if i >= 0 {
			field = line[:i]
		}
		if n < len(dst) {
			dst[n] = field
		}
		n++
		if i < 0 {
			return n
		}
		line = line[i+1:]
	}
}

func (c *AggTradeCSVReader) parseRow(line []byte, t *Trade) error {
	var f [8][]byte
	n := csvFields(line, f[:])
	if n != 7 && n != 8 {
		return c.fail("", fmt.Errorf("%w: %d columns, want 7 or 8 (%s)", ErrSyntax, n, "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker[,is_best_match]"))
	}
	var err error
	*t = Trade{Symbol: c.symbol}
	if t.AggID, err = parseInt64(f[0]); err != nil {
		return c.fail(aggTradeCSVColumns[0], intFieldErr(err, f[0]))
	}
	if t.Price, err = parseDecimal(f[1]); err != nil {
		return c.fail(aggTradeCSVColumns[1], fmt.Errorf("%w: %q", err, string(f[1])))
	}
	if t.Quantity, err = parseDecimal(f[2]); err != nil {
		return c.fail(aggTradeCSVColumns[2], fmt.Errorf("%w: %q", err, string(f[2])))
	}
	if t.FirstID, err = parseInt64(f[3]); err != nil {
		return c.fail(aggTradeCSVColumns[3], intFieldErr(err, f[3]))
	}
	if t.LastID, err = parseInt64(f[4]); err != nil {
		return c.fail(aggTradeCSVColumns[4], intFieldErr(err, f[4]))
	}
	if t.Time, err = parseInt64(f[5]); err != nil {
		return c.fail(aggTradeCSVColumns[5], intFieldErr(err, f[5]))
	}
	if t.Time, err = normalizeMillis(t.Time); err != nil {
		return c.fail(aggTradeCSVColumns[5], err)
	}
	var ok bool
	if t.BuyerMaker, ok = parseCSVBool(f[6]); !ok {
		return c.fail(aggTradeCSVColumns[6], fmt.Errorf("%w: %q is not true/false/True/False", ErrSyntax, string(f[6])))
	}
	if n == 8 {
		if _, ok = parseCSVBool(f[7]); !ok {
			return c.fail(aggTradeCSVColumns[7], fmt.Errorf("%w: %q is not true/false/True/False", ErrSyntax, string(f[7])))
		}
	}
	return nil
}

// intFieldErr describes a parseInt64 failure.
func intFieldErr(err error, b []byte) error {
	return fmt.Errorf("%w: want an integer, found %q", err, string(b))
}

func parseCSVBool(b []byte) (v, ok bool) {
	switch string(b) {
	case "true", "True":
		return true, true
	case "false", "False":
		return false, true
	}
	return false, false
}

// AppendAggTradeCSV appends t as one aggTrades CSV row ending in '\n', in the
// 8-column form of Binance's files (is_best_match is always true), time in
// ms, decimals with 8 fraction digits. Unknown raw trade ids are written as
// -1 (NoTradeID), which AggTradeCSVReader reads back as such.
func AppendAggTradeCSV(b []byte, t *Trade) []byte {
	b = strconv.AppendInt(b, t.AggID, 10)
	b = append(b, ',')
	b = t.Price.Append(b)
	b = append(b, ',')
	b = t.Quantity.Append(b)
	b = append(b, ',')
	b = strconv.AppendInt(b, t.FirstID, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, t.LastID, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, t.Time, 10)
	if t.BuyerMaker {
		return append(b, ",true,true\n"...)
	}
	return append(b, ",false,true\n"...)
}

// AggTradeCSVHeader is the header line of Binance's aggTrades files, for
// writers that want one (AppendAggTradeCSV writes none).
const AggTradeCSVHeader = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match\n"
