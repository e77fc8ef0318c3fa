"""diff-match-patch's match_main (Bitap fuzzy search), as the plugin's replaceContent uses it.

Written from the published algorithm. threshold 0.0 means exact and 1.0 means anything; a match
scores errors/len(pattern) + distance_from_loc/distance, and the best score not above the
threshold wins. Like the JavaScript library, patterns longer than 32 characters are refused.
"""

from __future__ import annotations

MAX_BITS = 32


class PatternTooLong(ValueError):
    pass


def match_main(text: str, pattern: str, loc: int, threshold: float = 0.5, distance: int = 1000) -> int:
    """Index of the best match of pattern near loc in text, or -1."""
    loc = max(0, min(loc, len(text)))
    if text == pattern:
        return 0
    if not text:
        return -1
    if text[loc : loc + len(pattern)] == pattern:
        return loc
    return _bitap(text, pattern, loc, threshold, distance)


def _bitap(text: str, pattern: str, loc: int, threshold: float, distance: int) -> int:
    if len(pattern) > MAX_BITS:
        raise PatternTooLong("Pattern too long for this browser.")
    m = len(pattern)
    masks: dict[str, int] = {}
    for i, ch in enumerate(pattern):
        masks[ch] = masks.get(ch, 0) | 1 << (m - i - 1)

    def score(errors: int, x: int) -> float:
        proximity = abs(loc - x)
        if not distance:
            return 1.0 if proximity else errors / m
        return errors / m + proximity / distance

    best_score = threshold
    # exact matches near loc tighten the threshold before the fuzzy passes
    exact = text.find(pattern, loc)
    if exact != -1:
        best_score = min(score(0, exact), best_score)
        exact = text.rfind(pattern, 0, loc + 2 * m)  # JS lastIndexOf(pattern, loc + m)
        if exact != -1:
            best_score = min(score(0, exact), best_score)

    match_bit = 1 << (m - 1)
    best_loc = -1
    bin_max = m + len(text)
    previous: list[int] = []
    for errors in range(m):
        # binary search for how far from loc a match with this many errors can still qualify
        lo, mid = 0, bin_max
        while lo < mid:
            if score(errors, loc + mid) <= best_score:
                lo = mid
            else:
                bin_max = mid
            mid = (bin_max - lo) // 2 + lo
        bin_max = mid
        start = max(1, loc - mid + 1)
        finish = min(loc + mid, len(text)) + m
        row = [0] * (finish + 2)
        row[finish + 1] = (1 << errors) - 1
        j = finish
        while j >= start:
            char_mask = masks.get(text[j - 1], 0) if j - 1 < len(text) else 0
            if errors == 0:
                row[j] = ((row[j + 1] << 1) | 1) & char_mask
            else:
                row[j] = (
                    (((row[j + 1] << 1) | 1) & char_mask)
                    | (((previous[j + 1] | previous[j]) << 1) | 1)
                    | previous[j + 1]
                )
            if row[j] & match_bit:
                candidate = score(errors, j - 1)
                if candidate <= best_score:
                    best_score, best_loc = candidate, j - 1
                    if best_loc > loc:
                        start = max(1, 2 * loc - best_loc)
                    else:
                        break
            j -= 1
        if score(errors + 1, loc) > best_score:
            break
        previous = row
    return best_loc
