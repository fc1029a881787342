#!/usr/bin/python3
"""Reference values for the caption and VQA metrics, computed with the original code.

Command (writes tests/fixtures/metrics/; see its README.md for what each file holds):

    /usr/bin/python3 training/metrics_reference.py \
        --corenlp-src /tmp/corenlp341/src --pycocoevalcap /tmp/pycocoevalcap --vqa /tmp/vqa \
        --out tests/fixtures/metrics

The three inputs are checkouts of public repositories that are NOT committed here:
  --corenlp-src    src/ of stanfordnlp/CoreNLP at tag v3.4.1 (the version whose jar
                   pycocoevalcap ships as stanford-corenlp-3.4.1.jar); it is compiled with javac
                   (--release 8) and the jar is placed next to pycocoevalcap's ptbtokenizer.py.
  --pycocoevalcap  salaniz/pycocoevalcap (commit ad63453): tokenizer/, bleu/, rouge/, cider/ are
                   imported and run unchanged (python 3).
  --vqa            GT-Vision-Lab/VQA: PythonEvaluationTools/vqaEvaluation/vqaEval.py at commit
                   a013f00 (current) and 458a8b2 (legacy), as vqaEval_current.py and
                   vqaEval_legacy.py. That code is Python 2; the only edits made when loading it
                   are print statements -> print() and a round() with Python 2 semantics (exact
                   value, ties away from zero) injected into its namespace.

Other modes:
    --fuzz N        compare only: tokenize N generated captions with Java and with the C++
                    tokenizer (--tok-bin, a small driver that prints ptb_tokens per line) and
                    report the mismatches (used while developing; not needed for the fixtures).
"""
import argparse
import decimal
import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

# ----------------------------------------------------------------------------------------------
# Caption generator: ordinary caption text with the tricky parts the PTB tokenizer treats
# specially (contractions, quotes, brackets, abbreviations, numbers, hyphens, ellipses, URLs...).

WORDS = ("a an the man woman dog cat two three people sitting standing on in of with and at is are "
         "next to near white black red large small table street car bus train pizza plate kite "
         "field grass water road sign holding playing riding looking top front while some").split()
CAPWORDS = "A The Two Three Man Woman Dog He She It This There They We You When While Mr. Ms. Dr.".split()
FRAGS = [
    "don't", "can't", "won't", "it's", "he's", "she'll", "we've", "they're", "I'm", "you'd", "isn't",
    "aren't", "DON'T", "Can't", "dog's", "people's", "dogs'", "o'clock", "ma'am", "y'all", "rock 'n' roll",
    "'90s", "'em", "'til", "cannot", "gonna", "wanna", "gotta", "'tis", "'twas", "let's", "that's",
    "don\u2019t", "it\u2019s", "\u2018quoted\u2019", "\u201cquoted\u201d", '"quoted"', "'single'", "``tex''",
    "(paren)", "[square]", "{curly}", "( spaced )", "-", "--", "---", "-----", "a-b", "well-known",
    "3-year-old", "x-ray", "black/white", "and/or", "1/2", "3 1/2", "12/25/2010", "3.5", "1,000", "10:30",
    ".5", "-5", "+3", "5.", "100%", "$5", "US$5", "#1", "#hashtag", "@user", "2nd", "1990s", "3.5-inch",
    "555-1234", "(555) 123-4567", "12 345 678", "www.example.com", "example.com/path", "http://x.org/a?b=c",
    "me@mail.com", "file.jpg", "U.S.", "U.S. The", "e.g.", "i.e.", "etc.", "a.m.", "p.m.", "St.", "st.",
    "Ave.", "Mt.", "Jr.", "Inc.", "Co.", "No. 5", "no. 5", "fig. 3", "vs.", "Ark.", "ark.", "Wash.",
    "wash.", "Miss.", "miss.", "Jan.", "jan.", "letter A.", "plan b.", "A. The", "...", "....", "......",
    ". . .", "\u2026", "?!", "!!", "??", "!", "?", ".", ",", ";", ":", "&", "&amp;", "AT&T", "*", "**",
    "=", "+", "^", "~", "|", "\\", "_", "__", "<", ">", "<<", "<b>", "</b>", ":)", ":-(", ";)", "=D",
    "caf\u00e9", "na\u00efve", "\u00c9cole", "\u00bd", "\u20ac5", "\u00a35", "\u00a2", "\u2014", "\u2013",
    "5\u00b0", "x\u00b2", "Stra\u00dfe", "\u00a0", "C++", "c#", "F#", "hello.world", "what?no",
    "a.k.a.", "ph.d.", "Ph.D.", "I.", "i.", "o.k.", "OK.", "T-shirt", "e-mail", "co-ed", "anti-war",
    "pro-", "re-enter", "'s", "'", "''", "`", "n't", "tv's", "bros.", "corp.", "Prof.", "Gen.", "gen.",
]
ENDINGS = ["", ".", " .", "!", "?", "...", ". ", "  ", ",", " ;"]


def gen_caption(rng):
    n = rng.randint(1, 12)
    parts = []
    for i in range(n):
        r = rng.random()
        if r < 0.45:
            w = rng.choice(WORDS)
        elif r < 0.55:
            w = rng.choice(CAPWORDS)
        else:
            w = rng.choice(FRAGS)
        if rng.random() < 0.12:
            w = w.upper() if rng.random() < 0.5 else w.capitalize()
        parts.append(w)
    sep = [" " if rng.random() < 0.9 else rng.choice(["", "  ", "\t"]) for _ in parts]
    s = "".join(p + sp for p, sp in zip(parts, sep)).strip() if rng.random() < 0.9 else "".join(p + sp for p, sp in zip(parts, sep))
    if rng.random() < 0.6:
        s = s[:1].upper() + s[1:]
    return s + rng.choice(ENDINGS)


HANDWRITTEN = [
    "A man's dog, \"running\" (fast) -- don't stop! It's 3.5 colours...",
    "Two  dogs:  one is BROWN; the other? white.",
    "what's going on ? yes.",
    "He said \"hi\" to Mr Smith, St. John and dr. who at 3 1/2 pm.",
    "plan b. letter A. The end. U.S. The big ones' toys, y'all o'clock ma'am",
    "rock 'n' roll '90s gonna CANNOT cannots",
    ":) ;-) :( hello.world what?no 555-1234 12 345 678 www.google.com a@b.com #tag @joe $5 100% 1,000",
    "well-known 3-year-old black/white a--b a---b a-----b ?! !! ?? ... .... ...... . . .",
    "caf\u00e9 na\u00efve \u201cquoted\u201d it\u2019s don\u2019t \u00bd \u20ac5 \u00a35 \u2014 x",
    "e.g. Mr. Smith and i.e. the U.S. Army.",
    "A plate of food (with a fork) [and a knife] {and a spoon}.",
    "",
    "...",
    "a dog",
    "The cat isn't on the mat; it's under the table, isn't it?",
    "There are 2 dogs, 10 cats and 1,000,000 ants!!!",
    "A sign that says \"STOP\" at 5:30 p.m. on Jan. 3.",
    "Mt. Everest, Ark. and Wash. are places; so is Washington, D.C.",
    "I'm sure they're gonna like it 'cause it's good.",
    "A 3.5-inch floppy disk, a T-shirt and an x-ray.",
]


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines))


# ----------------------------------------------------------------------------------------------
# Java PTBTokenizer (CoreNLP 3.4.1)

def build_corenlp(src, workdir):
    """Compiles PTBTokenizer and what it needs from CoreNLP's src/; returns the jar path."""
    classes = os.path.join(workdir, "classes")
    jar = os.path.join(workdir, "stanford-corenlp-3.4.1.jar")
    if os.path.exists(jar):
        return jar
    os.makedirs(classes, exist_ok=True)
    subprocess.run(["javac", "--release", "8", "-nowarn", "-encoding", "utf-8", "-proc:none", "-sourcepath", src,
                    "-d", classes, os.path.join(src, "edu/stanford/nlp/process/PTBTokenizer.java")], check=True)
    subprocess.run(["jar", "cf", jar, "-C", classes, "."], check=True)
    return jar


def java_tokenize(jar, lines):
    """Raw -preserveLines -lowerCase output of the Java tool, one list of lines."""
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write("\n".join(lines))
        name = f.name
    try:
        out = subprocess.run(["java", "-cp", jar, "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines",
                              "-lowerCase", name], check=True, capture_output=True).stdout.decode("utf-8")
    finally:
        os.remove(name)
    res = out.split("\n")
    if res and res[-1] == "" and len(res) == len(lines) + 1:
        res = res[:-1]
    return res


def fuzz(args):
    rng = random.Random(args.seed)
    jar = build_corenlp(args.corenlp_src, args.work)
    lines = [gen_caption(rng) for _ in range(args.fuzz)]
    want = java_tokenize(jar, lines)
    got = subprocess.run([args.tok_bin, "raw"], input="\n".join(lines).encode(), check=True,
                         capture_output=True).stdout.decode("utf-8").split("\n")
    bad = 0
    for i, line in enumerate(lines):
        w = want[i].rstrip(" ") if i < len(want) else "<missing>"
        g = got[i].rstrip(" ") if i < len(got) else "<missing>"
        if w != g:
            bad += 1
            if bad <= args.show:
                print("IN  :", repr(line))
                print("JAVA:", repr(w))
                print("C++ :", repr(g))
    print("%d of %d lines differ" % (bad, len(lines)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corenlp-src", required=True)
    ap.add_argument("--pycocoevalcap")
    ap.add_argument("--vqa")
    ap.add_argument("--out", default="tests/fixtures/metrics")
    ap.add_argument("--work", default="/tmp/xmodal_metrics_ref")
    ap.add_argument("--fuzz", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--show", type=int, default=20)
    ap.add_argument("--tok-bin")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    if args.fuzz:
        fuzz(args)
        return
    raise SystemExit("fixture generation: not yet")


if __name__ == "__main__":
    main()
