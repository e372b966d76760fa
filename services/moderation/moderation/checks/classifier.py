"""`classifier`: the offline model of `alt-profanity-check` (a linear SVM over word n-grams that
ships inside the wheel), run on the normalized text so leetspeak does not slip past it.

It is good at insults ("you idiot", "moron", "loser") and strict about mild words in short
messages ("this sucks" scores 1.0), so the default threshold is high (0.98); threats it scores
lower are covered by phrases in the blocklist. Loading it imports scikit-learn (a few seconds),
once per process, when the check is built."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Self

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.settings import ModerationSettings

Scorer = Callable[[Sequence[str]], Sequence[float]]


def load_scorer() -> Scorer:
    """alt-profanity-check's `predict_prob`, computed directly when the model allows.

    The shipped model is a `CalibratedClassifierCV` of five sigmoid-calibrated `LinearSVC`s;
    `predict_proba` spends ~5 ms per call in scikit-learn's per-call checks. The same arithmetic
    (mean over folds of `1 / (1 + exp(a * (x.w + c) + b))`) as one sparse-dense product takes
    microseconds. `fast_scorer` returns None for any other model shape, and then the library's
    own `predict_prob` is used; a test checks both agree.
    """
    from profanity_check import predict_prob
    from profanity_check import profanity_check as shipped

    fast = fast_scorer(shipped.vectorizer, shipped.model)
    if fast is not None:
        return fast

    def score(texts: Sequence[str]) -> Sequence[float]:
        return [float(probability) for probability in predict_prob(list(texts))]

    return score


def fast_scorer(vectorizer: Any, model: Any) -> Scorer | None:
    """The direct computation of `model.predict_proba(...)[:, 1]`, or None if it does not apply."""
    import numpy as np
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    if not isinstance(model, CalibratedClassifierCV) or list(model.classes_) != [0, 1]:
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
    weight_matrix = np.column_stack(weights)
    intercept = np.array(intercepts)
    slope = np.array(slopes)
    offset = np.array(offsets)
    features = tfidf_features(vectorizer)

    def score(texts: Sequence[str]) -> Sequence[float]:
        scores = []
        for text in texts:
            if features is None:
                decision = (vectorizer.transform([text]) @ weight_matrix)[0] + intercept
            else:
                indices, values = features(text)
                decision = values @ weight_matrix[indices] + intercept
            probability = 1.0 / (1.0 + np.exp(slope * decision + offset))
            scores.append(float(probability.mean()))
        return scores

    return score


def tfidf_features(vectorizer: Any) -> Callable[[str], tuple[Any, Any]] | None:
    """`vectorizer.transform([text])` as (column indices, values), without scikit-learn's
    per-call overhead; None unless it is a plain l2-normalized TfidfVectorizer."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    if (
        type(vectorizer) is not TfidfVectorizer
        or vectorizer.norm != "l2"
        or not vectorizer.use_idf
        or vectorizer.sublinear_tf
        or vectorizer.binary
    ):
        return None
    analyze = vectorizer.build_analyzer()
    vocabulary: dict[str, int] = vectorizer.vocabulary_
    idf = vectorizer.idf_

    def features(text: str) -> tuple[Any, Any]:
        counts: dict[int, int] = {}
        for term in analyze(text):
            column = vocabulary.get(term)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        indices = np.fromiter(counts, dtype=np.intp, count=len(counts))
        values = np.fromiter(counts.values(), dtype=np.float64, count=len(counts)) * idf[indices]
        norm = np.sqrt(values @ values)
        return indices, values / norm if norm > 0 else values

    return features


class Classifier(Check):
    name = "classifier"

    def __init__(self, score: Scorer, threshold: float) -> None:
        self.score = score
        self.threshold = threshold

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(load_scorer(), settings.classifier_threshold)

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        text = context.normalized.text
        if not text or self.score([text])[0] < self.threshold:
            return None
        return self.reject(
            "Your message looks insulting or abusive; please keep it friendly.", strike=True
        )
