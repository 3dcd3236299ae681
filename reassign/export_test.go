package reassign

import "context"

// JournalOf summarises the journal in a Store for the external tests: whether
// the run is done, its throttle rate, and how often each move was submitted
// again.
func JournalOf(ctx context.Context, s Store) (done bool, rate int64, resubmits map[string]int, err error) {
	b, err := s.Load(ctx)
	if err != nil {
		return false, 0, nil, err
	}
	j, err := decodeJournal(b)
	if err != nil {
		return false, 0, nil, err
	}
	resubmits = make(map[string]int)
	for _, r := range j.Moves {
		resubmits[r.Move.String()] = r.Resubmits
	}
	return j.Done, j.Ledger.Rate(), resubmits, nil
}
