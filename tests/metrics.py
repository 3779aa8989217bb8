"""Quality measures shared by the tests and the engine benchmark: the product's own
(workers/evaluation/metrics.py), so tests, benches and ``manage.py evaluate`` score alike."""

from workers.evaluation.metrics import corpus_wer, normalized_wer, normalized_words, wer, words

__all__ = ["corpus_wer", "normalized_wer", "normalized_words", "wer", "words"]
