/* The physical limit of the position recompute, for obelisk bench: the same numbers as
 * the book's recompute (_recompute.h), over columns only, with nothing checked, kept or
 * masked. Every input is a column, every margin tier a column per asset, the marks are
 * all given and finite, and the previous marks are not saved; a flat row needs no test,
 * its size of 0 makes its numbers 0 and its liquidation price NaN by themselves. Two rows
 * per SSE2 instruction where the book's recompute takes them so (a one-row loop where it
 * does not); totals in two lanes, as the book's.
 */
#ifndef OBELISK_LIMIT_RECOMPUTE_H
#define OBELISK_LIMIT_RECOMPUTE_H

#include <math.h>
#include <stdint.h>

/* obelisk_position_columns (the outputs, as the book's), and OBELISK_RECOMPUTE_SSE2 when
   the book sweeps with SSE2: the limit takes the same path */
#include "_recompute.h"

typedef struct {
    const double* size;
    const double* entry_px;
    const double* leverage;
    const double* margin;
    const double* isolated;             /* 1.0 or 0.0 */
    obelisk_position_columns derived;
    /* tier k of row i at [k * padded + i], padded to `depth` as the book pads its tables */
    const double* lower;
    const double* mmr;
    const double* deduction;
    const double* low_bound;
    const double* high_bound;
    int64_t padded;                     /* rows, even; a last odd row's partner is flat */
    int32_t depth;
} obelisk_limit_positions;

/* Recompute every row at `marks` (padded of them); the cross uPnL and maintenance
 * margin totals, which the liquidation prices take. */
static inline void obelisk_limit_recompute(const obelisk_limit_positions* p,
                                           const double* marks, double balance,
                                           double* cross_upnl, double* cross_maintenance) {
    int64_t i, n = p->padded;
    int32_t k;
#ifdef OBELISK_RECOMPUTE_SSE2
    const __m128d one = _mm_set1_pd(1.0), zero = _mm_setzero_pd(), nan = _mm_set1_pd(NAN);
    const __m128d sign = _mm_set1_pd(-0.0), infinity = _mm_set1_pd(INFINITY);
    __m128d cu = zero, cm = zero, equity, maintenance_total;
    double sums[2][2];
    for (i = 0; i < n; i += 2) {
        __m128d mark = _mm_loadu_pd(marks + i), size = _mm_loadu_pd(p->size + i);
        __m128d value = _mm_mul_pd(_mm_andnot_pd(sign, size), mark);
        __m128d upnl = _mm_mul_pd(size, _mm_sub_pd(mark, _mm_loadu_pd(p->entry_px + i)));
        __m128d mmr = _mm_loadu_pd(p->mmr + i), deduction = _mm_loadu_pd(p->deduction + i);
        __m128d cross = _mm_sub_pd(one, _mm_loadu_pd(p->isolated + i)), maintenance;
        for (k = 1; k < p->depth; k++) {
            __m128d reached = _mm_cmpge_pd(value, _mm_loadu_pd(p->lower + k * n + i));
            mmr = _mm_or_pd(_mm_and_pd(reached, _mm_loadu_pd(p->mmr + k * n + i)),
                            _mm_andnot_pd(reached, mmr));
            deduction = _mm_or_pd(_mm_and_pd(reached, _mm_loadu_pd(p->deduction + k * n + i)),
                                  _mm_andnot_pd(reached, deduction));
        }
        maintenance = _mm_sub_pd(_mm_mul_pd(value, mmr), deduction);
        cu = _mm_add_pd(cu, _mm_mul_pd(cross, upnl));
        cm = _mm_add_pd(cm, _mm_mul_pd(cross, maintenance));
        _mm_storeu_pd(p->derived.mark_px + i, mark);
        _mm_storeu_pd(p->derived.unrealized_pnl + i, upnl);
        _mm_storeu_pd(p->derived.position_value + i, value);
        _mm_storeu_pd(p->derived.initial_margin + i, _mm_div_pd(value, _mm_loadu_pd(p->leverage + i)));
        _mm_storeu_pd(p->derived.maintenance_margin + i, maintenance);
    }
    _mm_storeu_pd(sums[0], cu);
    _mm_storeu_pd(sums[1], cm);
    *cross_upnl = sums[0][0] + sums[0][1];
    *cross_maintenance = sums[1][0] + sums[1][1];
    equity = _mm_set1_pd(balance + *cross_upnl);
    maintenance_total = _mm_set1_pd(*cross_maintenance);
    for (i = 0; i < n; i += 2) {
        __m128d size = _mm_loadu_pd(p->size + i), amount = _mm_andnot_pd(sign, size);
        __m128d side = _mm_or_pd(_mm_and_pd(_mm_cmpgt_pd(size, zero), one),
                                 _mm_andnot_pd(_mm_cmpgt_pd(size, zero), _mm_sub_pd(zero, one)));
        __m128d isolated = _mm_loadu_pd(p->isolated + i), cross = _mm_sub_pd(one, isolated);
        __m128d maintenance = _mm_loadu_pd(p->derived.maintenance_margin + i);
        __m128d available = _mm_sub_pd(
            _mm_add_pd(_mm_mul_pd(isolated, _mm_add_pd(_mm_loadu_pd(p->margin + i),
                                                       _mm_loadu_pd(p->derived.unrealized_pnl + i))),
                       _mm_mul_pd(cross, equity)),
            _mm_mul_pd(cross, _mm_sub_pd(maintenance_total, maintenance)));
        __m128d notional = _mm_mul_pd(amount, _mm_loadu_pd(p->derived.mark_px + i));
        __m128d chosen = nan, chosen_rate = one, price, good;
        for (k = p->depth - 1; k >= 0; k--) {
            __m128d times_rate = _mm_sub_pd(notional, _mm_mul_pd(
                side, _mm_add_pd(available, _mm_loadu_pd(p->deduction + k * n + i))));
            __m128d rate = _mm_sub_pd(one, _mm_mul_pd(side, _mm_loadu_pd(p->mmr + k * n + i)));
            __m128d inside = _mm_and_pd(
                _mm_cmpge_pd(times_rate, _mm_mul_pd(_mm_loadu_pd(p->low_bound + k * n + i), rate)),
                _mm_cmple_pd(times_rate,
                             _mm_mul_pd(_mm_loadu_pd(p->high_bound + k * n + i), rate)));
            chosen = _mm_or_pd(_mm_and_pd(inside, times_rate), _mm_andnot_pd(inside, chosen));
            chosen_rate = _mm_or_pd(_mm_and_pd(inside, rate), _mm_andnot_pd(inside, chosen_rate));
        }
        price = _mm_div_pd(chosen, _mm_mul_pd(amount, chosen_rate));
        good = _mm_and_pd(_mm_cmpgt_pd(price, zero), _mm_cmplt_pd(price, infinity));
        _mm_storeu_pd(p->derived.liquidation_px + i,
                      _mm_or_pd(_mm_and_pd(good, price), _mm_andnot_pd(good, nan)));
    }
#else
    double cu[2] = {0.0, 0.0}, cm[2] = {0.0, 0.0}, equity;
    for (i = 0; i < n; i++) {
        double mark = marks[i], size = p->size[i], value = fabs(size) * mark;
        double mmr = p->mmr[i], deduction = p->deduction[i], cross = 1.0 - p->isolated[i];
        for (k = 1; k < p->depth; k++)
            if (value >= p->lower[k * n + i]) {
                mmr = p->mmr[k * n + i];
                deduction = p->deduction[k * n + i];
            }
        p->derived.mark_px[i] = mark;
        p->derived.unrealized_pnl[i] = size * (mark - p->entry_px[i]);
        p->derived.position_value[i] = value;
        p->derived.initial_margin[i] = value / p->leverage[i];
        p->derived.maintenance_margin[i] = value * mmr - deduction;
        cu[i % 2] += cross * p->derived.unrealized_pnl[i];
        cm[i % 2] += cross * p->derived.maintenance_margin[i];
    }
    *cross_upnl = cu[0] + cu[1];
    *cross_maintenance = cm[0] + cm[1];
    equity = balance + *cross_upnl;
    for (i = 0; i < n; i++) {
        double size = p->size[i], amount = fabs(size), side = size > 0 ? 1.0 : -1.0;
        double isolated = p->isolated[i], cross = 1.0 - isolated;
        double maintenance = p->derived.maintenance_margin[i], price = NAN;
        double available = isolated * (p->margin[i] + p->derived.unrealized_pnl[i]) + cross * equity
            - cross * (*cross_maintenance - maintenance);
        for (k = 0; k < p->depth; k++) {
            double times_rate = amount * p->derived.mark_px[i]
                - side * (available + p->deduction[k * n + i]);
            double rate = 1.0 - side * p->mmr[k * n + i];
            if (times_rate >= p->low_bound[k * n + i] * rate
                    && times_rate <= p->high_bound[k * n + i] * rate) {
                price = times_rate / (amount * rate);
                break;
            }
        }
        p->derived.liquidation_px[i] = price > 0 && price < INFINITY ? price : NAN;
    }
#endif
}

#endif  /* OBELISK_LIMIT_RECOMPUTE_H */
