// The BPE merge loop shared by both tokenizers: a doubly linked list of symbols and a priority queue
// of adjacent pairs. Each step merges the best pair (highest priority; ties go to the leftmost), which
// is what GPT-2, HF tokenizers and SentencePiece do, in O(n log n) instead of a rescan per merge.
// Internal to the tokenizer layer.
#pragma once

#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

namespace llmopt::bpe {

struct Symbol {
  int32_t prev = -1;
  int32_t next = -1;
  uint32_t start = 0;  // byte offset in the text being tokenized
  uint32_t len = 0;    // 0 once merged into its left neighbour
  int32_t id = -1;     // token id, or -1 when not (yet) a vocabulary token
  uint32_t version = 0;
};

struct PairMerge {
  double priority;  // higher merges first: a SentencePiece score, or -rank
  int32_t id;       // the merged token
};

// Appends a symbol linked after the current last one.
inline void push_symbol(std::vector<Symbol>* syms, uint32_t start, uint32_t len, int32_t id) {
  Symbol s;
  s.start = start;
  s.len = len;
  s.id = id;
  s.prev = static_cast<int32_t>(syms->size()) - 1;
  if (!syms->empty()) syms->back().next = static_cast<int32_t>(syms->size());
  syms->push_back(s);
}

// Runs the merges over `syms` (linked in order, as built by push_symbol). `pair_fn(left, right)`
// returns the merge for two adjacent symbols or nullopt. Merged symbols keep len == 0; walk the list
// from index 0 via `next` to read the result.
template <class PairFn>
void merge_symbols(std::vector<Symbol>* syms_ptr, PairFn&& pair_fn) {
  std::vector<Symbol>& syms = *syms_ptr;
  struct Candidate {
    double priority;
    uint32_t start;  // left symbol's offset: the tie breaker
    int32_t left, right, id;
    uint32_t left_version, right_version;
    bool operator<(const Candidate& o) const {  // std::priority_queue pops the "largest"
      if (priority != o.priority) return priority < o.priority;
      return start > o.start;
    }
  };
  std::priority_queue<Candidate> queue;
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    std::optional<PairMerge> m = pair_fn(syms[l], syms[r]);
    if (!m) return;
    queue.push(Candidate{m->priority, syms[l].start, l, r, m->id, syms[l].version, syms[r].version});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) try_pair(i, i + 1);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& l = syms[c.left];
    Symbol& r = syms[c.right];
    // Stale entries: one side was merged away or changed since the pair was queued.
    if (l.len == 0 || r.len == 0 || l.next != c.right || l.version != c.left_version ||
        r.version != c.right_version) {
      continue;
    }
    l.len += r.len;
    l.id = c.id;
    ++l.version;
    r.len = 0;
    ++r.version;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.left;
    try_pair(l.prev, c.left);
    try_pair(c.left, l.next);
  }
}

}  // namespace llmopt::bpe
