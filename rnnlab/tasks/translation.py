"""translate: a toy translation between two generated languages, by words.

Source (SVO, adjectives after the noun, prepositions):
    N_s A1 A2  V  N_o A1  [P N_p A1]            "tiva kolu ... "
Target (SOV, adjectives before the noun in mirror order, postpositions, case particles):
    A2' A1' N_s' SUBJ  [A1' N_p' P']  A1' N_o' OBJ  V'

Every source word has one translation (a generated lexicon, fixed by
`lexicon_seed`, not by the run's seed: runs with different seeds learn the same
pair), and the grammar is deterministic, so a model can learn it exactly. It
must reorder (the verb goes last, the prepositional phrase moves before the
object, adjectives swap sides and order) and insert the two particles.
Source lengths (in words) are uniform over the possible ones in [min_len,
max_len]; a sentence of that length is then one of the structures having it,
uniformly.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from ..errors import ConfigError
from ..options import opt
from .registry import TASKS
from .seq2seq import LengthOptions, Seq2SeqTask

CONSONANTS, VOWELS = "bdgklmnprstvz", "aeiou"
PREPOSITIONS = 3


def word_pool() -> list[str]:
    """Every consonant-vowel-consonant-vowel word, e.g. 'tiva': 4225 of them."""
    return ["".join(letters) for letters in itertools.product(CONSONANTS, VOWELS, CONSONANTS, VOWELS)]


def sentence_structures(max_adjectives: int) -> dict[int, list[tuple[int, int, bool, int]]]:
    """Source length in words -> every (subject adjectives, object adjectives, prepositional phrase?,
    its adjectives) giving that length."""
    out: dict[int, list[tuple[int, int, bool, int]]] = {}
    adjectives = range(max_adjectives + 1)
    for structure in itertools.product(adjectives, adjectives, (False, True), adjectives):
        subject, obj, phrase, inner = structure
        if phrase or inner == 0:  # no adjective counts for an absent phrase
            out.setdefault(3 + subject + obj + (2 + inner if phrase else 0), []).append(structure)
    return out


@dataclass
class TranslateOptions(LengthOptions):
    name: str = opt("translate", "task (`rnnlab list tasks`)")
    min_len: int = opt(3, "shortest source sentence, in words (3: subject, verb, object)", min=3)
    max_len: int = opt(9, "longest source sentence, in words (at most 5 + 3 max_adjectives)", min=3)
    nouns: int = opt(12, "nouns in the lexicon", min=1, max=500)
    verbs: int = opt(6, "verbs in the lexicon", min=1, max=500)
    adjectives: int = opt(8, "adjectives in the lexicon", min=1, max=500)
    max_adjectives: int = opt(2, "most adjectives after one noun", min=0, max=4)
    lexicon_seed: int = opt(0, "seed of the generated vocabulary of both languages", min=0)

    def check(self, section: str) -> None:
        super().check(section)
        lengths = sorted(sentence_structures(self.max_adjectives))
        if not any(self.min_len <= length <= self.max_len for length in lengths):
            raise ConfigError(f"{section}.max_len", self.max_len, f"no sentence of {self.min_len} to "
                              f"{self.max_len} words with max_adjectives = {self.max_adjectives}",
                              f"lengths {', '.join(map(str, lengths))}")


@TASKS.register("translate", "Toy translation, SVO/noun-adjective -> SOV/adjective-noun with particles (seq2seq)")
class TranslateTask(Seq2SeqTask):
    Options = TranslateOptions
    joiner, bleu_tokenize = " ", "13a"  # words: BLEU as usual, on words

    def __init__(self, options: TranslateOptions, seed: int = 0):
        self.options = options
        o = options
        sizes = {"noun": o.nouns, "verb": o.verbs, "adjective": o.adjectives, "preposition": PREPOSITIONS}
        words = random.Random(o.lexicon_seed).sample(word_pool(), 2 * sum(sizes.values()) + 2)
        self.words, self.lexicon = {}, {}  # category -> source words; source word -> target word
        for category, size in sizes.items():
            self.words[category], words = words[:size], words[size:]
        for source in itertools.chain(*self.words.values()):
            self.lexicon[source], words = words[0], words[1:]
        self.subject_marker, self.object_marker = words
        self.structures = sentence_structures(o.max_adjectives)
        self.lengths = [n for n in range(o.min_len, o.max_len + 1) if n in self.structures]
        target = [*self.lexicon.values(), self.subject_marker, self.object_marker]
        self.setup(list(self.lexicon), target, o.buckets)

    def length_range(self):
        return self.options.min_len, self.options.max_len

    def noun_phrase(self, rng, adjectives: int) -> tuple[list[str], list[str]]:
        noun = rng.choice(self.words["noun"])
        modifiers = [rng.choice(self.words["adjective"]) for _ in range(adjectives)]
        source = [noun, *modifiers]  # the noun first, its adjectives after
        target = [self.lexicon[word] for word in modifiers[::-1]] + [self.lexicon[noun]]  # mirror image
        return source, target

    def example(self, rng):
        length = rng.choice(self.lengths)  # with max_adjectives = 0 no sentence has 4 words
        subject_adjectives, object_adjectives, phrase, inner = rng.choice(self.structures[length])
        subject, subject_t = self.noun_phrase(rng, subject_adjectives)
        verb = rng.choice(self.words["verb"])
        obj, obj_t = self.noun_phrase(rng, object_adjectives)
        source = [*subject, verb, *obj]
        target = [*subject_t, self.subject_marker]
        if phrase:  # a preposition before its noun phrase becomes a postposition after it, before the object
            preposition = rng.choice(self.words["preposition"])
            inner_s, inner_t = self.noun_phrase(rng, inner)
            source += [preposition, *inner_s]
            target += [*inner_t, self.lexicon[preposition]]
        target += [*obj_t, self.object_marker, self.lexicon[verb]]
        return source, target
