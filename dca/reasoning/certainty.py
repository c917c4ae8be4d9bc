"""How sure the model was of what it wrote, from its own token probabilities (free: read during
decoding). Summaries of one generation's per-token log-probabilities and step confidences
(``Completion.token_logprobs``, ``token_confidence``), as in confidence-filtered voting (DeepConf,
Fu et al. 2025): a low stretch of confidence marks a generation more likely wrong."""

from __future__ import annotations

from statistics import fmean

from dca.reasoning.events import Sample
from dca.reasoning.weigh import execution_facts
from dca.runtime.generation import Completion

WINDOW = 8  # tokens in a confidence window: about one line of a short program
# The summary a vote's first sample is trusted on: the best predictor of a right greedy program
# of the six, on GSM8K's dev split (train rows 101-200; lab/NOTEBOOK.md)
STAT = "mean_conf"


def certainty(completion: Completion) -> dict[str, float] | None:
    """Summaries of ``completion``'s token probabilities; None when none were recorded.

    >>> c = Completion(token_logprobs=[-0.1, -2.0, -0.2], token_confidence=[9.0, 3.0, 8.0])
    >>> certainty(c)["min_logprob"], certainty(c)["tail_conf"]
    (-2.0, 6.6667)
    """
    logprobs, confidence = completion.token_logprobs, completion.token_confidence
    if not logprobs or len(confidence) != len(logprobs):
        return None
    width = min(WINDOW, len(confidence))
    windows = [fmean(confidence[i : i + width]) for i in range(len(confidence) - width + 1)]
    lowest = sorted(confidence)[: max(1, len(confidence) // 10)]
    values = {
        "mean_logprob": fmean(logprobs),
        "min_logprob": min(logprobs),
        "mean_conf": fmean(confidence),
        "min_window_conf": min(windows),
        "tail_conf": fmean(confidence[-width:]),
        "low10_conf": fmean(lowest),
    }
    return {name: round(value, 4) for name, value in values.items()}


def is_sure(sample: Sample, question: str, threshold: float) -> bool:
    """Is ``sample`` (a vote's greedy first program) sure enough to answer alone: no execution fact
    against it, and its certainty at least ``threshold``? Where the generator reports no token
    probabilities (a remote server), the execution facts alone decide, as `program` answers.

    >>> sure = Sample(kind="program", reasoning="", answer="4", final="4", certainty={STAT: 11.0})
    >>> is_sure(sure, "How many?", 10.0), is_sure(sure, "How many?", 12.0)
    (True, False)
    >>> is_sure(Sample(kind="program", reasoning="", answer="-4", final="-4", certainty={STAT: 11.0}), "How much is left?", 10.0)
    False
    >>> is_sure(Sample(kind="program", reasoning="", answer="4", final="4"), "How many?", 10.0)  # no probabilities
    True
    >>> is_sure(Sample(kind="cot", reasoning="", answer="4", final="4"), "How many?", 10.0)
    False
    """
    if sample.kind != "program" or execution_facts(question, sample):
        return False  # only programs are trusted alone: a thought's certainty is not read
    value = (sample.certainty or {}).get(STAT)
    return value is None or value >= threshold
