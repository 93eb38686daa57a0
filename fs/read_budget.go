package fs

import "sync"

// readBudget is the one budget for the blocks every read handle of a mount
// holds (Config.ReadMemory): read-ahead blocks, the blocks random reads
// fetch, and the data cache's blocks a handle holds (counted by reserve, not
// allocated). A handle asks it before fetching a block and never waits: when
// the budget is spent the handle fetches fewer blocks ahead, down to none,
// and serves the read itself with one GET into the kernel's buffer
// (readDirect).
// So many readers shrink their windows instead of the process growing, and
// no read can wait for memory another read holds.
//
// The budget also keeps the full-size buffers it handed out for reuse: the
// bytes of the blocks held plus those kept never exceed the limit, so the
// process holds at most limit bytes of read buffers (as long as the garbage
// collector frees what the budget dropped).
type readBudget struct {
	limit int64

	// mu guards the fields below. It is a leaf lock, never held while
	// waiting or while another lock is taken.
	mu      sync.Mutex
	used    int64     // bytes of the blocks held by handles (reserved)
	peak    int64     // the highest used has been, for tests and logs
	holders int       // handles holding at least one full-size block
	free    []*[]byte // readBlockSize buffers to reuse; used + len(free)*readBlockSize <= limit
}

func newReadBudget(limit int64) *readBudget {
	return &readBudget{limit: limit}
}

// fairShare is how many full-size blocks a handle may hold while others
// hold some too: the budget divided among the handles holding blocks (at
// least one each), so that one reader cannot take the whole budget from the
// others. A single reader gets everything.
func (r *readBudget) fairShare(holding bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	holders := r.holders
	if !holding {
		holders++
	}
	return max(1, int(r.limit/readBlockSize)/max(holders, 1))
}

// get reserves a buffer of n bytes, at most readBlockSize: a full-size
// (pooled) one when n is above smallBlock, else one of exactly n bytes. It
// returns nil, never waiting, when the budget cannot spare it.
func (r *readBudget) get(n int64) *[]byte {
	cost := n
	if n > smallBlock {
		cost = readBlockSize
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.used+cost > r.limit {
		return nil
	}
	var buf *[]byte
	if cost == readBlockSize && len(r.free) > 0 {
		buf = r.free[len(r.free)-1]
		r.free = r.free[:len(r.free)-1]
	} else {
		// Make room among the kept buffers, so that what is held and
		// what is kept stays within the limit.
		for len(r.free) > 0 && r.used+cost+int64(len(r.free))*readBlockSize > r.limit {
			r.free[len(r.free)-1] = nil
			r.free = r.free[:len(r.free)-1]
		}
		b := make([]byte, cost)
		buf = &b
	}
	r.used += cost
	r.peak = max(r.peak, r.used)
	return buf
}

// reserve counts n bytes held that are not the budget's buffers (a block
// of the data cache a handle holds): false when the budget cannot spare them.
func (r *readBudget) reserve(n int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.used+n > r.limit {
		return false
	}
	for len(r.free) > 0 && r.used+n+int64(len(r.free))*readBlockSize > r.limit {
		r.free[len(r.free)-1] = nil
		r.free = r.free[:len(r.free)-1]
	}
	r.used += n
	r.peak = max(r.peak, r.used)
	return true
}

// unreserve returns n bytes counted by reserve.
func (r *readBudget) unreserve(n int64) {
	r.mu.Lock()
	r.used -= n
	r.mu.Unlock()
}

// put returns a buffer from get once nothing reads or writes it any more.
func (r *readBudget) put(buf *[]byte) {
	cost := int64(len(*buf))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.used -= cost
	if cost == readBlockSize {
		r.free = append(r.free, buf)
	}
}

// join and leave count the handles holding full-size blocks (fairShare).
func (r *readBudget) join() {
	r.mu.Lock()
	r.holders++
	r.mu.Unlock()
}

func (r *readBudget) leave() {
	r.mu.Lock()
	r.holders--
	r.mu.Unlock()
}

// reserved returns the bytes held by blocks now, and the most ever held.
func (r *readBudget) reserved() (now, peak int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.used, r.peak
}
