"""The offline profanity model of `alt-profanity-check` (TF-IDF words into five
sigmoid-calibrated linear SVMs, shipped inside the wheel), run on the normalized text so
leetspeak does not slip past it.

It is good at insults ("you idiot", "moron", "loser") and strict about mild words in short
messages ("this sucks" scores 1.0), so the default threshold is high (0.98); threats it scores
lower are covered by phrases in the blocklist.

Speed. The library's `predict_prob` spends ~5 ms a call in scikit-learn's per-call checks, and
importing scikit-learn to unpickle the model costs a few seconds of CPU at every start. The
model is plain arithmetic: words -> counts x idf -> l2-normalized -> per fold `x.w + c` ->
`1 / (1 + exp(a * d + b))` -> mean over folds. `LinearProfanityModel` does exactly that
(tests check it equals `predict_prob`), and caches the extracted numbers in
`MODERATION_CLASSIFIER_CACHE_DIR`, keyed by a hash of the shipped model files, so later starts
never import scikit-learn. A model of any other shape falls back to `predict_prob`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Self

import numpy as np

log = logging.getLogger(__name__)

Scorer = Callable[[Sequence[str]], Sequence[float]]
MODEL_FILES = ("vectorizer.joblib", "model.joblib")


@dataclass(frozen=True)
class LinearProfanityModel:
    """alt-profanity-check's model as numbers: vocabulary, idf, and per-fold w, c, a, b."""

    terms: np.ndarray  # str, column order
    idf: np.ndarray  # (terms,)
    weights: np.ndarray  # (terms, folds)
    intercept: np.ndarray  # (folds,)
    slope: np.ndarray  # (folds,) sigmoid a
    offset: np.ndarray  # (folds,) sigmoid b
    stop_words: np.ndarray  # str
    token_pattern: str

    def scorer(self) -> Scorer:
        vocabulary = {str(term): column for column, term in enumerate(self.terms)}
        stop_words = frozenset(str(word) for word in self.stop_words)
        pattern = re.compile(self.token_pattern)

        def score(texts: Sequence[str]) -> Sequence[float]:
            scores = []
            for text in texts:
                counts: dict[int, int] = {}
                for term in pattern.findall(text.lower()):
                    column = vocabulary.get(term)
                    if column is not None and term not in stop_words:
                        counts[column] = counts.get(column, 0) + 1
                columns = np.fromiter(counts, dtype=np.intp, count=len(counts))
                values = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                values *= self.idf[columns]
                norm = np.sqrt(values @ values)
                if norm > 0:
                    values /= norm
                decision = values @ self.weights[columns] + self.intercept
                probability = 1.0 / (1.0 + np.exp(self.slope * decision + self.offset))
                scores.append(float(probability.mean()))
            return scores

        return score

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.npz")
        np.savez(
            partial,
            terms=self.terms,
            idf=self.idf,
            weights=self.weights,
            intercept=self.intercept,
            slope=self.slope,
            offset=self.offset,
            stop_words=self.stop_words,
            token_pattern=np.array(self.token_pattern),
        )
        partial.replace(path)  # atomic: two instances starting together never read half a file

    @classmethod
    def load(cls, path: Path) -> Self:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                terms=data["terms"],
                idf=data["idf"],
                weights=data["weights"],
                intercept=data["intercept"],
                slope=data["slope"],
                offset=data["offset"],
                stop_words=data["stop_words"],
                token_pattern=str(data["token_pattern"]),
            )

    @classmethod
    def extract(cls, vectorizer: Any, model: Any) -> Self | None:
        """The numbers inside the shipped scikit-learn objects; None for any other shape."""
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
        from sklearn.svm import LinearSVC

        plain_words = (
            type(vectorizer) is TfidfVectorizer
            and vectorizer.analyzer == "word"
            and vectorizer.tokenizer is None
            and vectorizer.preprocessor is None
            and vectorizer.strip_accents is None
            and vectorizer.lowercase
            and vectorizer.ngram_range == (1, 1)
            and vectorizer.norm == "l2"
            and vectorizer.use_idf
            and not vectorizer.sublinear_tf
            and not vectorizer.binary
            and vectorizer.stop_words in ("english", None)
        )
        if not plain_words or not isinstance(model, CalibratedClassifierCV):
            return None
        if list(model.classes_) != [0, 1]:
            return None
        weights, intercepts, slopes, offsets = [], [], [], []
        for fold in model.calibrated_classifiers_:
            estimator = fold.estimator
            if (
                fold.method != "sigmoid"
                or not isinstance(estimator, LinearSVC)
                or estimator.coef_.shape[0] != 1
                or len(fold.calibrators) != 1
            ):
                return None
            weights.append(estimator.coef_[0])
            intercepts.append(estimator.intercept_[0])
            slopes.append(fold.calibrators[0].a_)
            offsets.append(fold.calibrators[0].b_)
        terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        stop_words = sorted(ENGLISH_STOP_WORDS) if vectorizer.stop_words == "english" else []
        return cls(
            terms=np.array(terms, dtype=str),
            idf=np.asarray(vectorizer.idf_, dtype=np.float64),
            weights=np.column_stack(weights).astype(np.float64),
            intercept=np.array(intercepts, dtype=np.float64),
            slope=np.array(slopes, dtype=np.float64),
            offset=np.array(offsets, dtype=np.float64),
            stop_words=np.array(stop_words, dtype=str),
            token_pattern=vectorizer.token_pattern,
        )


def shipped_model_key() -> str:
    """Identifies the model files inside the installed alt-profanity-check."""
    digest = hashlib.sha256(metadata.version("alt-profanity-check").encode())
    # Found without importing the package: its __init__ unpickles the model (scikit-learn).
    spec = importlib.util.find_spec("profanity_check")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("alt-profanity-check is not installed (package profanity_check)")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    for name in MODEL_FILES:
        digest.update((data / name).read_bytes())
    return digest.hexdigest()[:16]


def library_scorer() -> Scorer:
    """The library's own `predict_prob` (imports scikit-learn and unpickles the model)."""
    from profanity_check import predict_prob

    def score(texts: Sequence[str]) -> Sequence[float]:
        return [float(probability) for probability in predict_prob(list(texts))]

    return score


def load_scorer(cache_dir: Path | None = None) -> Scorer:
    """The fastest faithful scorer: from the cache, else extracted (and cached), else the
    library's."""
    cache = cache_dir / f"profanity-{shipped_model_key()}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        try:
            return LinearProfanityModel.load(cache).scorer()
        except (OSError, ValueError, KeyError) as error:
            log.warning("ignoring the classifier cache %s (%s); rebuilding it", cache, error)
    from profanity_check import profanity_check as shipped

    extracted = LinearProfanityModel.extract(shipped.vectorizer, shipped.model)
    if extracted is None:
        log.info("alt-profanity-check's model has an unexpected shape; using predict_prob")
        return library_scorer()
    if cache is not None:
        try:
            extracted.save(cache)
        except OSError as error:
            log.warning(
                "cannot write the classifier cache %s (%s): every start will load "
                "scikit-learn; point MODERATION_CLASSIFIER_CACHE_DIR at a writable folder",
                cache,
                error.strerror or error,
            )
    return extracted.scorer()
