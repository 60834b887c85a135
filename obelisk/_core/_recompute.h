/* The position book's recompute, over columns: marks in, then each position's uPnL,
 * value, initial and maintenance margin, the account totals, then liquidation prices.
 *
 * Why C and columns: the recompute of every row after a mark is the book's one full
 * sweep, and a sweep over 112-byte records (the public POSITION_DTYPE) spends its time
 * moving bytes it does not need. Here each position's stored numbers are one 64-byte
 * line (obelisk_position_core) and what the sweep writes are columns, two rows per SSE2
 * instruction (baseline x86-64: no dispatch). Elsewhere the same arithmetic runs one
 * row at a time. Both paths give identical bits: every row's numbers come from the same
 * operations in the same order, and the totals are summed in two interleaved lanes
 * (row i into lane i % 2), then added: one SSE2 register per sum.
 *
 * Rows and columns hold `padded` rows, a multiple of OBELISK_RECOMPUTE_BLOCK; rows past
 * the book's own are flat (size 0, leverage 1) and take no part.
 */
#ifndef OBELISK_RECOMPUTE_H
#define OBELISK_RECOMPUTE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if (defined(__SSE2__) || defined(_M_X64)) && !defined(OBELISK_RECOMPUTE_SCALAR)
#include <emmintrin.h>
#define OBELISK_RECOMPUTE_SSE2 1
#endif

#define OBELISK_RECOMPUTE_BLOCK 2

/* What the book stores of one position: one cache line. */
typedef struct {
    double size;            /* signed, + long */
    double entry_px;
    double leverage;
    double margin;          /* isolated collateral; 0 for cross */
    double realized_pnl;
    double fees;
    double funding;
    uint8_t isolated;
    uint8_t _pad[3];
    int32_t tiers;          /* where its margin table starts in obelisk_margin_tables */
} obelisk_position_core;

/* The per-row columns: marks (inputs) and what the recompute derives from them. */
typedef struct {
    double* mark_px;
    double* unrealized_pnl;
    double* position_value;
    double* initial_margin;
    double* maintenance_margin;
    double* liquidation_px;
} obelisk_position_columns;

/* The margin tables, each padded to `depth` tiers (tier k of a row's table at
 * [row.tiers + k]; few, so they stay in cache): past a table's own tiers, `lower` and
 * `low_bound` are +inf (never chosen) and mmr and deduction repeat its last tier.
 * `low_bound` and `high_bound` are the liquidation search's tier bounds: lower x
 * (1 - 1e-12) and the next tier's lower x (1 + 1e-12), +inf for the last. */
typedef struct {
    const double* lower;
    const double* mmr;
    const double* deduction;
    const double* low_bound;
    const double* high_bound;
    int32_t depth;
} obelisk_margin_tables;

typedef struct {
    double cross_unrealized_pnl;
    double cross_position_value;
    double cross_initial_margin;
    double cross_maintenance_margin;
    double isolated_equity;         /* isolated margins plus their uPnL */
    double isolated_position_value;
} obelisk_totals;

/* The sums of one lane. */
typedef struct {
    double cu, cv, ci, cm, ie, iv;
    double unchecked;               /* x * 0: 0 while every number is finite, else NaN */
    double lowest_mark;
} obelisk_lane_sums;

/* One row of the first pass; `new_mark` NaN keeps the mark (and is not checked). */
static inline void obelisk_derive_row(const obelisk_position_core* p, int64_t i,
                                      const obelisk_position_columns* c,
                                      const obelisk_margin_tables* t, int32_t depth,
                                      double new_mark, double* old_marks,
                                      obelisk_lane_sums* s) {
    double mark = c->mark_px[i];
    double size = p->size, upnl, value, initial, maintenance, mmr, deduction, isolated, cross;
    int32_t k;
    if (old_marks != NULL)
        old_marks[i] = mark;
    if (new_mark == new_mark) {
        mark = new_mark;
        s->lowest_mark = mark < s->lowest_mark ? mark : s->lowest_mark;
        s->unchecked += mark * 0.0;
    }
    c->mark_px[i] = mark;
    if (size == 0) {
        c->unrealized_pnl[i] = c->position_value[i] = 0.0;
        c->initial_margin[i] = c->maintenance_margin[i] = 0.0;
        return;
    }
    upnl = size * (mark - p->entry_px);
    value = fabs(size) * mark;
    initial = value / p->leverage;
    mmr = t->mmr[p->tiers];
    deduction = t->deduction[p->tiers];
    for (k = 1; k < depth; k++) {           /* the highest tier whose lower bound it reaches */
        if (value >= t->lower[p->tiers + k]) {
            mmr = t->mmr[p->tiers + k];
            deduction = t->deduction[p->tiers + k];
        }
    }
    maintenance = value * mmr - deduction;
    isolated = p->isolated;
    cross = 1.0 - isolated;
    s->ie += isolated * (p->margin + upnl);
    s->iv += isolated * value;
    s->cu += cross * upnl;
    s->cv += cross * value;
    s->ci += cross * initial;
    s->cm += cross * maintenance;
    s->unchecked += upnl * 0.0 + value * 0.0 + initial * 0.0 + maintenance * 0.0;
    c->unrealized_pnl[i] = upnl;
    c->position_value[i] = value;
    c->initial_margin[i] = initial;
    c->maintenance_margin[i] = maintenance;
}

/* One row of the second pass: the mark at which equity meets the maintenance margin.
 * In tier k the price is (amount x mark - side x (available + deduction)) / (amount x
 * rate), rate = 1 - side x mmr; the answer is the lowest tier whose notional it lies in
 * (tested without division). NaN when no positive price solves it. */
static inline double obelisk_liquidation_row(const obelisk_position_core* p, int64_t i,
                                             const obelisk_position_columns* c,
                                             const obelisk_margin_tables* t, int32_t depth,
                                             double cross_equity, double cross_maintenance,
                                             int legacy) {
    double size = p->size, amount = fabs(size), side = size > 0 ? 1.0 : -1.0;
    double isolated = p->isolated, cross = 1.0 - isolated;
    double mark = c->mark_px[i], maintenance = c->maintenance_margin[i];
    double available = isolated * (p->margin + c->unrealized_pnl[i]) + cross * cross_equity
        - cross * (cross_maintenance - maintenance);
    double price = NAN, notional_times_rate, rate;
    int32_t k;
    if (size == 0)
        return NAN;
    if (legacy) {
        price = mark - side * (available - maintenance) / amount;
    } else {
        for (k = 0; k < depth; k++) {
            notional_times_rate = amount * mark
                - side * (available + t->deduction[p->tiers + k]);
            rate = 1.0 - side * t->mmr[p->tiers + k];
            if (notional_times_rate >= t->low_bound[p->tiers + k] * rate
                    && notional_times_rate <= t->high_bound[p->tiers + k] * rate) {
                price = notional_times_rate / (amount * rate);
                break;
            }
        }
    }
    return isfinite(price) && price > 0 ? price : NAN;
}

#ifdef OBELISK_RECOMPUTE_SSE2

typedef struct {
    __m128d cu, cv, ci, cm, ie, iv, unchecked, lowest_mark;
} obelisk_pair_sums;

#define OBELISK_GATHER(rows, i, field) \
    _mm_loadh_pd(_mm_load_sd(&(rows)[i].field), &(rows)[(i) + 1].field)

/* Tier k of rows i and i + 1's tables (`tiers`: theirs) from `table`. */
#define OBELISK_TIER(table, tiers, k) \
    _mm_loadh_pd(_mm_load_sd(&(table)[(tiers)[0] + (k)]), &(table)[(tiers)[1] + (k)])

static inline __m128d obelisk_select(__m128d mask, __m128d yes, __m128d no) {
    return _mm_or_pd(_mm_and_pd(mask, yes), _mm_andnot_pd(mask, no));
}

static inline __m128d obelisk_abs(__m128d x) {
    return _mm_andnot_pd(_mm_set1_pd(-0.0), x);
}

/* Rows i and i + 1 of the first pass (as obelisk_derive_row, each in its lane). */
static inline void obelisk_derive_block(const obelisk_position_core* rows, int64_t i,
                                        const obelisk_position_columns* c,
                                        const obelisk_margin_tables* t, int32_t depth,
                                        const double* new_marks, double* old_marks,
                                        obelisk_pair_sums* s) {
    const __m128d zero = _mm_setzero_pd(), one = _mm_set1_pd(1.0);
    __m128d mark = _mm_loadu_pd(c->mark_px + i);
    __m128d size, open, upnl, value, initial, maintenance, mmr, deduction, isolated, cross;
    __m128d reached;
    int32_t k, tiers[2];
    if (old_marks != NULL)
        _mm_storeu_pd(old_marks + i, mark);
    if (new_marks != NULL) {
        __m128d new_mark = _mm_loadu_pd(new_marks);
        __m128d given = _mm_cmpord_pd(new_mark, new_mark);
        mark = obelisk_select(given, new_mark, mark);
        s->lowest_mark = _mm_min_pd(obelisk_select(given, new_mark, _mm_set1_pd(INFINITY)),
                                    s->lowest_mark);
        s->unchecked = _mm_add_pd(s->unchecked, _mm_and_pd(given, _mm_mul_pd(new_mark, zero)));
    }
    _mm_storeu_pd(c->mark_px + i, mark);
    size = OBELISK_GATHER(rows, i, size);
    open = _mm_cmpneq_pd(size, zero);
    upnl = _mm_and_pd(open, _mm_mul_pd(size, _mm_sub_pd(mark, OBELISK_GATHER(rows, i, entry_px))));
    value = _mm_and_pd(open, _mm_mul_pd(obelisk_abs(size), mark));
    initial = _mm_div_pd(value, OBELISK_GATHER(rows, i, leverage));
    tiers[0] = rows[i].tiers;
    tiers[1] = rows[i + 1].tiers;
    mmr = OBELISK_TIER(t->mmr, tiers, 0);
    deduction = OBELISK_TIER(t->deduction, tiers, 0);
    for (k = 1; k < depth; k++) {
        reached = _mm_cmpge_pd(value, OBELISK_TIER(t->lower, tiers, k));
        mmr = obelisk_select(reached, OBELISK_TIER(t->mmr, tiers, k), mmr);
        deduction = obelisk_select(reached, OBELISK_TIER(t->deduction, tiers, k), deduction);
    }
    maintenance = _mm_and_pd(open, _mm_sub_pd(_mm_mul_pd(value, mmr), deduction));
    isolated = _mm_set_pd((double)rows[i + 1].isolated, (double)rows[i].isolated);
    cross = _mm_sub_pd(one, isolated);
    s->ie = _mm_add_pd(s->ie, _mm_and_pd(open, _mm_mul_pd(
        isolated, _mm_add_pd(OBELISK_GATHER(rows, i, margin), upnl))));
    s->iv = _mm_add_pd(s->iv, _mm_mul_pd(isolated, value));
    s->cu = _mm_add_pd(s->cu, _mm_mul_pd(cross, upnl));
    s->cv = _mm_add_pd(s->cv, _mm_mul_pd(cross, value));
    s->ci = _mm_add_pd(s->ci, _mm_mul_pd(cross, initial));
    s->cm = _mm_add_pd(s->cm, _mm_mul_pd(cross, maintenance));
    s->unchecked = _mm_add_pd(s->unchecked, _mm_add_pd(_mm_add_pd(_mm_add_pd(
        _mm_mul_pd(upnl, zero), _mm_mul_pd(value, zero)), _mm_mul_pd(initial, zero)),
        _mm_mul_pd(maintenance, zero)));
    _mm_storeu_pd(c->unrealized_pnl + i, upnl);
    _mm_storeu_pd(c->position_value + i, value);
    _mm_storeu_pd(c->initial_margin + i, initial);
    _mm_storeu_pd(c->maintenance_margin + i, maintenance);
}

/* Rows i and i + 1 of the second pass (as obelisk_liquidation_row). */
static inline void obelisk_liquidation_pair(const obelisk_position_core* rows, int64_t i,
                                            const obelisk_position_columns* c,
                                            const obelisk_margin_tables* t, int32_t depth,
                                            __m128d cross_equity, __m128d cross_maintenance,
                                            int legacy) {
    const __m128d zero = _mm_setzero_pd(), one = _mm_set1_pd(1.0), nan = _mm_set1_pd(NAN);
    __m128d size = OBELISK_GATHER(rows, i, size);
    __m128d amount = obelisk_abs(size);
    __m128d side = obelisk_select(_mm_cmpgt_pd(size, zero), one, _mm_set1_pd(-1.0));
    __m128d isolated = _mm_set_pd((double)rows[i + 1].isolated, (double)rows[i].isolated);
    __m128d cross = _mm_sub_pd(one, isolated);
    __m128d mark = _mm_loadu_pd(c->mark_px + i);
    __m128d maintenance = _mm_loadu_pd(c->maintenance_margin + i);
    __m128d available = _mm_sub_pd(
        _mm_add_pd(_mm_mul_pd(isolated, _mm_add_pd(OBELISK_GATHER(rows, i, margin),
                                                   _mm_loadu_pd(c->unrealized_pnl + i))),
                   _mm_mul_pd(cross, cross_equity)),
        _mm_mul_pd(cross, _mm_sub_pd(cross_maintenance, maintenance)));
    __m128d price, chosen = nan, chosen_rate = one, notional_times_rate, rate, inside;
    int32_t k, tiers[2];
    tiers[0] = rows[i].tiers;
    tiers[1] = rows[i + 1].tiers;
    if (legacy) {
        price = _mm_sub_pd(mark, _mm_div_pd(
            _mm_mul_pd(side, _mm_sub_pd(available, maintenance)), amount));
    } else {
        /* from the top tier down, so that the lowest one that holds its price wins */
        for (k = depth - 1; k >= 0; k--) {
            notional_times_rate = _mm_sub_pd(_mm_mul_pd(amount, mark), _mm_mul_pd(
                side, _mm_add_pd(available, OBELISK_TIER(t->deduction, tiers, k))));
            rate = _mm_sub_pd(one, _mm_mul_pd(side, OBELISK_TIER(t->mmr, tiers, k)));
            inside = _mm_and_pd(
                _mm_cmpge_pd(notional_times_rate,
                             _mm_mul_pd(OBELISK_TIER(t->low_bound, tiers, k), rate)),
                _mm_cmple_pd(notional_times_rate,
                             _mm_mul_pd(OBELISK_TIER(t->high_bound, tiers, k), rate)));
            chosen = obelisk_select(inside, notional_times_rate, chosen);
            chosen_rate = obelisk_select(inside, rate, chosen_rate);
        }
        price = _mm_div_pd(chosen, _mm_mul_pd(amount, chosen_rate));
    }
    /* finite and positive (NaN fails both), on an open row */
    _mm_storeu_pd(c->liquidation_px + i, obelisk_select(
        _mm_and_pd(_mm_cmpneq_pd(size, zero), _mm_and_pd(
            _mm_cmpgt_pd(price, zero), _mm_cmplt_pd(price, _mm_set1_pd(INFINITY)))),
        price, nan));
}

static inline double obelisk_lane(__m128d v, int high) {
    return _mm_cvtsd_f64(high ? _mm_unpackhi_pd(v, v) : v);
}

typedef obelisk_pair_sums obelisk_block_sums;

static inline void obelisk_block_start(obelisk_block_sums* s) {
    s->cu = s->cv = s->ci = s->cm = s->ie = s->iv = s->unchecked = _mm_setzero_pd();
    s->lowest_mark = _mm_set1_pd(INFINITY);
}

static inline void obelisk_block_lanes(const obelisk_block_sums* s, obelisk_lane_sums* lanes) {
    int l;
    for (l = 0; l < OBELISK_RECOMPUTE_BLOCK; l++) {
        lanes[l].cu = obelisk_lane(s->cu, l);
        lanes[l].cv = obelisk_lane(s->cv, l);
        lanes[l].ci = obelisk_lane(s->ci, l);
        lanes[l].cm = obelisk_lane(s->cm, l);
        lanes[l].ie = obelisk_lane(s->ie, l);
        lanes[l].iv = obelisk_lane(s->iv, l);
        lanes[l].unchecked = obelisk_lane(s->unchecked, l);
        lanes[l].lowest_mark = obelisk_lane(s->lowest_mark, l);
    }
}

#else  /* one row at a time, each into its lane */

typedef struct {
    obelisk_lane_sums lane[OBELISK_RECOMPUTE_BLOCK];
} obelisk_block_sums;

static inline void obelisk_block_start(obelisk_block_sums* s) {
    int l;
    for (l = 0; l < OBELISK_RECOMPUTE_BLOCK; l++) {
        s->lane[l].cu = s->lane[l].cv = s->lane[l].ci = s->lane[l].cm = 0.0;
        s->lane[l].ie = s->lane[l].iv = s->lane[l].unchecked = 0.0;
        s->lane[l].lowest_mark = INFINITY;
    }
}

static inline void obelisk_derive_block(const obelisk_position_core* rows, int64_t i,
                                        const obelisk_position_columns* c,
                                        const obelisk_margin_tables* t, int32_t depth,
                                        const double* new_marks, double* old_marks,
                                        obelisk_block_sums* s) {
    int l;
    for (l = 0; l < OBELISK_RECOMPUTE_BLOCK; l++)
        obelisk_derive_row(&rows[i + l], i + l, c, t, depth,
                           new_marks != NULL ? new_marks[l] : NAN, old_marks, &s->lane[l]);
}

static inline void obelisk_block_lanes(const obelisk_block_sums* s, obelisk_lane_sums* lanes) {
    int l;
    for (l = 0; l < OBELISK_RECOMPUTE_BLOCK; l++)
        lanes[l] = s->lane[l];
}

#endif  /* OBELISK_RECOMPUTE_SSE2 */

/* obelisk_recompute for tables `depth` tiers deep (a constant where it is called, so
 * that the compiler unrolls the tier loops). */
static inline int obelisk_recompute_depth(const obelisk_position_core* rows, int64_t count,
                                          int64_t padded, const obelisk_position_columns* c,
                                          const double* marks, double* old_marks,
                                          const obelisk_margin_tables* t, int32_t depth,
                                          double balance, int legacy,
                                          obelisk_totals* totals) {
    obelisk_block_sums sums;
    obelisk_lane_sums lanes[OBELISK_RECOMPUTE_BLOCK];
    double last_marks[OBELISK_RECOMPUTE_BLOCK];
    double cross_equity, unchecked, lowest_mark;
    int64_t i, whole = marks != NULL ? count - count % OBELISK_RECOMPUTE_BLOCK : padded;
    int l;
#ifdef OBELISK_RECOMPUTE_SSE2
    __m128d equity, maintenance;
#endif
    obelisk_block_start(&sums);
    for (i = 0; i < whole; i += OBELISK_RECOMPUTE_BLOCK)
        obelisk_derive_block(rows, i, c, t, depth, marks != NULL ? marks + i : NULL, old_marks,
                             &sums);
    if (whole < padded) {       /* the last marks: rows past the book's keep theirs */
        for (l = 0; l < OBELISK_RECOMPUTE_BLOCK; l++)
            last_marks[l] = whole + l < count ? marks[whole + l] : NAN;
        obelisk_derive_block(rows, whole, c, t, depth, last_marks, old_marks, &sums);
    }
    obelisk_block_lanes(&sums, lanes);
    totals->cross_unrealized_pnl = lanes[0].cu + lanes[1].cu;
    totals->cross_position_value = lanes[0].cv + lanes[1].cv;
    totals->cross_initial_margin = lanes[0].ci + lanes[1].ci;
    totals->cross_maintenance_margin = lanes[0].cm + lanes[1].cm;
    totals->isolated_equity = lanes[0].ie + lanes[1].ie;
    totals->isolated_position_value = lanes[0].iv + lanes[1].iv;
    unchecked = lanes[0].unchecked + lanes[1].unchecked;
    lowest_mark = lanes[1].lowest_mark < lanes[0].lowest_mark ? lanes[1].lowest_mark
                                                              : lanes[0].lowest_mark;
    cross_equity = balance + totals->cross_unrealized_pnl;
#ifdef OBELISK_RECOMPUTE_SSE2
    equity = _mm_set1_pd(cross_equity);
    maintenance = _mm_set1_pd(totals->cross_maintenance_margin);
    for (i = 0; i < padded; i += 2)
        obelisk_liquidation_pair(rows, i, c, t, depth, equity, maintenance, legacy);
#else
    for (i = 0; i < padded; i++)
        c->liquidation_px[i] = obelisk_liquidation_row(
            &rows[i], i, c, t, depth, cross_equity, totals->cross_maintenance_margin, legacy);
#endif
    return unchecked == 0.0 && !(lowest_mark <= 0.0);
}

/* Recompute every row: take `marks` (count of them, NaN keeps a mark; NULL: none),
 * saving the marks they replace in `old_marks` (padded long; NULL: not kept), and
 * derive. Whether every new mark is positive and every derived number finite (a
 * liquidation price may be NaN); the caller undoes a refused mark. */
static inline int obelisk_recompute(const obelisk_position_core* rows, int64_t count,
                                    int64_t padded, const obelisk_position_columns* c,
                                    const double* marks, double* old_marks,
                                    const obelisk_margin_tables* t, double balance, int legacy,
                                    obelisk_totals* totals) {
    switch (t->depth) {         /* the usual depths, each with its loops unrolled */
    case 1:
        return obelisk_recompute_depth(rows, count, padded, c, marks, old_marks, t, 1,
                                       balance, legacy, totals);
    case 2:
        return obelisk_recompute_depth(rows, count, padded, c, marks, old_marks, t, 2,
                                       balance, legacy, totals);
    case 3:
        return obelisk_recompute_depth(rows, count, padded, c, marks, old_marks, t, 3,
                                       balance, legacy, totals);
    default:
        return obelisk_recompute_depth(rows, count, padded, c, marks, old_marks, t, t->depth,
                                       balance, legacy, totals);
    }
}

#endif  /* OBELISK_RECOMPUTE_H */
