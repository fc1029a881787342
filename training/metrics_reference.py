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
                    tokenizer (--tok-bin: the driver in tests/fixtures/metrics/README.md, which
                    prints metrics::ptb_tokens_lines of stdin; it is called with the argument
                    "raw", which it may ignore) and report the mismatches (the development loop;
                    not needed for the fixtures).
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


# ----------------------------------------------------------------------------------------------
# Caption fixtures

CAPTION_IMAGES = [  # (image id, reference captions, candidate or None when the image has no result)
    (101, ["A man riding a wave on top of a surfboard.", "A surfer rides the large wave in the ocean.",
           "A man on a surfboard riding a wave!", "Surfer in wetsuit riding a big wave.",
           "A person that is surfing in the water."],
     "a man riding a wave on a surfboard"),
    (102, ["Two dogs don't like the cat's toy.", "It's a dog's life: two dogs playing with a toy.",
           "\"Two dogs\" playing (with a toy) on the grass.", "Two brown dogs are playing tug-of-war.",
           "A pair of dogs can't stop playing with a rope toy..."],
     "Two dogs don't share a toy; they're playing."),
    (103, ["A clock shows 10:30 on a building in the U.S.", "The clock on the tower reads 3 1/2 hours past 7.",
           "A 3.5-inch clock hangs on a wall; it's 1,000 years old.", "A large clock tower in front of a blue sky"],
     "A clock tower at 10:30 in the U.S."),
    (104, ["A plate with pizza, salad, and a fork."], "a pizza on a plate with a fork"),
    (105, ["An empty room with a chair.", "A room with one wooden chair in it.", "A chair in an empty room"], "..."),
    (106, ["Mr. Smith's car is parked on Main St. near the Ave.", "A red car parked on the street",
           "The car (a red one) is parked.", "A red car is parked next to the curb.",
           "A RED CAR PARKED ON THE STREET."],
     "A red car parked on Main St."),
    (107, ["This image has no result.", "Nothing to see here."], None),
    (108, ["A cat sitting on a laptop.", "A cat is laying on a laptop keyboard.", "a cat on a computer",
           "Cat on laptop \u2014 cute!", "A caf\u00e9 cat on a na\u00efve laptop"],
     "a cat laying on a laptop keyboard"),
    (109, [], None),
]
RESULT_ORDER = [106, 101, 103, 102, 108, 104, 105]

NOUNS = "man woman dog cat bus train pizza plate kite table bench street boy girl horse clock giraffe".split()
ADJS = "red white black large small young old wooden tall brown".split()
VERBS = "sitting standing riding holding eating looking walking playing".split()
PLACES = ["on a table", "in a field", "on the street", "next to a building", "in the water", "on a bench",
          "in front of a house", "under a tree", "at the beach", "near a window"]


def grammar_caption(rng, subject=None):
    subj = subject or rng.choice(NOUNS)
    parts = [rng.choice(["A", "a", "The", "the", "An old", "Two"]), rng.choice(ADJS + [""]), subj,
             rng.choice(["is", "", "are"]), rng.choice(VERBS), rng.choice(PLACES)]
    s = " ".join(p for p in parts if p)
    if rng.random() < 0.3:
        s += rng.choice([" with a " + rng.choice(NOUNS), ", and a " + rng.choice(NOUNS), " (" + rng.choice(ADJS) + ")"])
    if rng.random() < 0.25:
        s += " " + gen_caption(rng)
    return s + rng.choice(["", ".", " .", "!", "..."])


def random_caption_set(rng, n_images):
    images, anns, results = [], [], []
    aid = 1
    for i in range(n_images):
        img_id = 5000 + 7 * i
        images.append({"id": img_id, "file_name": "img_%06d.jpg" % img_id, "width": 64, "height": 64})
        subj = rng.choice(NOUNS)
        for _ in range(rng.choice([1, 3, 5, 5, 5, 6])):
            anns.append({"id": aid, "image_id": img_id, "caption": grammar_caption(rng, subj)})
            aid += 1
        if rng.random() < 0.9:
            results.append({"image_id": img_id, "caption": grammar_caption(rng, subj if rng.random() < 0.7 else None)})
    rng.shuffle(results)
    return {"info": {"description": "xmodal metrics fixture"}, "type": "captions", "licenses": [],
            "images": images, "annotations": anns}, results


def handmade_caption_set():
    images, anns, aid = [], [], 1
    for img_id, refs, _ in CAPTION_IMAGES:
        images.append({"id": img_id, "file_name": "COCO_val2014_%012d.jpg" % img_id, "width": 640, "height": 480})
        for r in refs:
            anns.append({"id": aid, "image_id": img_id, "caption": r})
            aid += 1
    hyp = {img_id: h for img_id, _, h in CAPTION_IMAGES}
    results = [{"image_id": i, "caption": hyp[i]} for i in RESULT_ORDER]
    return {"info": {"description": "xmodal metrics fixture"}, "type": "captions", "licenses": [],
            "images": images, "annotations": anns}, results


def coco_reference_scores(pkg_parent, gt, results):
    """pycocoevalcap's COCOEvalCap.evaluate with params['image_id'] = the images of the results
    (what its example does), minus METEOR and SPICE (their jars are not in the snapshot)."""
    sys.path.insert(0, pkg_parent)
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.cider.cider import Cider
    img_to_anns = {}
    for a in gt["annotations"]:
        img_to_anns.setdefault(a["image_id"], []).append(a)
    res_ids = set(r["image_id"] for r in results)
    res_anns = {r["image_id"]: [dict(r, id=k)] for k, r in enumerate(results)}
    img_ids = [im["id"] for im in gt["images"] if im["id"] in res_ids]  # loadRes keeps GT image order
    gts = {i: img_to_anns[i] for i in img_ids}
    res = {i: res_anns[i] for i in img_ids}
    tok = PTBTokenizer()
    gts_t, res_t = tok.tokenize(gts), tok.tokenize(res)
    out = {"n_images": len(img_ids), "image_ids": img_ids}
    bleu, _ = Bleu(4).compute_score(gts_t, res_t, verbose=0)
    out["bleu"] = [float(b) for b in bleu]
    rouge, rouge_per = Rouge().compute_score(gts_t, res_t)
    out["rouge_l"] = float(rouge)
    out["rouge_l_per_image"] = [float(x) for x in rouge_per]
    cider, cider_per = Cider().compute_score(gts_t, res_t)
    out["cider_d"] = float(cider)
    out["cider_d_per_image"] = [float(x) for x in cider_per]
    out["tokenized_refs"] = [gts_t[i] for i in img_ids]
    out["tokenized_hyps"] = [res_t[i][0] for i in img_ids]
    return out


# ----------------------------------------------------------------------------------------------
# VQA fixtures

VQA_HANDMADE = [  # (question type, answer type, ten answers, prediction or None)
    ("is the", "yes/no", ["yes"] * 10, "yes"),
    ("is the", "yes/no", ["yes"] * 10, "Yes"),          # unanimous: 'current' does not normalise
    ("is the", "yes/no", ["yes"] * 10, "yes."),
    ("is the", "yes/no", ["yes"] * 9 + ["no"], "Yes."),  # not unanimous: normalised
    ("is the", "yes/no", ["yes"] * 7 + ["no"] * 3, "no"),
    ("how many", "number", ["2"] * 6 + ["two"] * 2 + ["3", "2 "], "two"),
    ("how many", "number", ["2"] * 10, "two"),           # unanimous '2' vs 'two'
    ("how many", "number", ["0"] * 4 + ["none"] * 3 + ["zero", "1", "0 "], "None"),
    ("how many", "number", ["1,000"] * 2 + ["1000"] * 5 + ["100"] * 3, "1,000"),
    ("how many", "number", ["3.5"] * 5 + ["3"] * 5, "3.5"),
    ("what is the", "other", ["a dog"] * 3 + ["dog"] * 4 + ["the dog", "dogs", "puppy"], "A dog"),
    ("what is the", "other", ["t-shirt"] * 3 + ["t shirt"] * 2 + ["tshirt"] * 2 + ["shirt"] * 3, "T-Shirt"),
    ("what is the", "other", ["black and white"] * 4 + ["black/white"] * 3 + ["black, white"] * 3, "black/white"),
    ("what is the", "other", ["dont know"] * 4 + ["don't know"] * 3 + ["unknown"] * 3, "dont know"),
    ("what color is", "other", ["red"] * 5 + ["red!", "Red", "red.", " red", "red\n"], "red\t"),
    ("what color is", "other", ["red"] * 2 + ["blue"] * 8, "red"),
    ("what color is", "other", ["red"] * 3 + ["blue"] * 7, "blue"),
    ("what color is", "other", ["white"] * 5 + ["grey"] * 5, "....................................white"),
    ("what color is", "other", ["green"] * 10, None),    # no result: not scored
    ("why", "other", ["because it's raining", "raining", "rain", "it is raining", "rain"] * 2, "it's raining"),
]


def handmade_vqa():
    questions, anns, results = [], [], []
    for k, (qtype, atype, answers, pred) in enumerate(VQA_HANDMADE):
        qid, img = 9000 + k, 100 + k // 3
        questions.append({"question_id": qid, "image_id": img, "question": "%s question %d?" % (qtype, k)})
        anns.append({"question_id": qid, "image_id": img, "question_type": qtype, "answer_type": atype,
                     "multiple_choice_answer": max(set(answers), key=answers.count),
                     "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                                 for i, a in enumerate(answers)]})
        if pred is not None:
            results.append({"question_id": qid, "answer": pred})
    return questions, anns, results


VQA_POOL = ["yes", "no", "Yes", "yes.", "no!", "2", "two", "Two", "none", "0", "1", "one", "a dog", "dog",
            "the dog", "red", "Red!", "t-shirt", "t shirt", "1,000", "1000", "3.5", "dont", "don't", "cant",
            "black and white", "black/white", "black, white", "  yes  ", "yes\n", "an apple", "apple", "10",
            "ten", "left", "on the left", "isnt", "(none)", "tennis racket", "tennis-racket", "it's", "its"]


def random_vqa(rng, n):
    questions, anns, results = [], [], []
    for k in range(n):
        qid, img = 20000 + k, 700 + k // 4
        atype = rng.choice(["yes/no", "number", "other"])
        qtype = rng.choice(["is the", "how many", "what is the", "what color is", "are there"])
        choices = rng.sample(VQA_POOL, rng.choice([1, 2, 3, 4]))
        answers = [rng.choice(choices) for _ in range(10)]
        questions.append({"question_id": qid, "image_id": img, "question": "%s thing %d?" % (qtype, k)})
        anns.append({"question_id": qid, "image_id": img, "question_type": qtype, "answer_type": atype,
                     "multiple_choice_answer": answers[0],
                     "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                                 for i, a in enumerate(answers)]})
        if rng.random() < 0.95:
            pred = rng.choice(choices) if rng.random() < 0.6 else rng.choice(VQA_POOL)
            results.append({"question_id": qid, "answer": pred})
    rng.shuffle(results)
    return questions, anns, results


def py2_round(x, n=0):
    """Python 2's round(): the exact binary value rounded half away from zero."""
    q = decimal.Decimal(1).scaleb(-n)
    return float(decimal.Decimal(x).quantize(q, rounding=decimal.ROUND_HALF_UP))


def load_vqa_eval(path):
    """Loads the Python 2 vqaEval.py: print statements become calls, round() gets Python 2
    semantics; nothing else is changed."""
    src = open(path, encoding="utf-8").read()
    src = re.sub(r'^(\s*)print (.*)$', r'\1print(\2)', src, flags=re.M)
    spec = importlib.util.spec_from_loader("vqaEval_" + os.path.basename(path), loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.round = py2_round
    exec(compile(src, path, "exec"), mod.__dict__)
    return mod


class QAShim:
    """The two things VQAEval uses of the VQA helper object: .qa and getQuesIds()."""

    def __init__(self, qa):
        self.qa = qa

    def getQuesIds(self):
        return list(self.qa.keys())


def vqa_reference_scores(path, anns, results):
    mod = load_vqa_eval(path)
    raw = {}

    class Eval(mod.VQAEval):
        def setEvalQA(self, quesId, acc):  # also keep the unrounded accuracy
            raw[quesId] = acc
            mod.VQAEval.setEvalQA(self, quesId, acc)

    gt = QAShim({a["question_id"]: json.loads(json.dumps(a)) for a in anns})
    res = QAShim({r["question_id"]: dict(r) for r in results})
    ev = Eval(gt, res, n=2)
    qids = [a["question_id"] for a in anns if a["question_id"] in res.qa]  # annotation order
    stdout, sys.stdout = sys.stdout, open(os.devnull, "w")
    try:
        ev.evaluate(qids)
    finally:
        sys.stdout.close()
        sys.stdout = stdout
    return {"overall": ev.accuracy["overall"], "per_answer_type": ev.accuracy["perAnswerType"],
            "per_question_type": ev.accuracy["perQuestionType"], "n_questions": len(qids),
            "question_ids": qids, "per_question": [raw[q] for q in qids]}


def dump(path, obj, indent=1):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)
        f.write("\n")


def make_fixtures(args):
    out = args.out
    os.makedirs(out, exist_ok=True)
    jar = build_corenlp(args.corenlp_src, args.work)
    # 1. Tokenizer: handwritten lines and generated ones, tokenized by Java as one file.
    rng = random.Random(7)
    lines = HANDWRITTEN + [gen_caption(rng) for _ in range(600)]
    write_lines(os.path.join(out, "ptb_input.txt"), lines)
    write_lines(os.path.join(out, "ptb_expected.txt"), java_tokenize(jar, lines))
    # 2. Captions: pycocoevalcap with the Java tokenizer next to ptbtokenizer.py.
    pkg_parent = os.path.join(args.work, "pkg")
    pkg = os.path.join(pkg_parent, "pycocoevalcap")
    shutil.rmtree(pkg_parent, ignore_errors=True)
    shutil.copytree(args.pycocoevalcap, pkg)
    shutil.copy(jar, os.path.join(pkg, "tokenizer", "stanford-corenlp-3.4.1.jar"))
    gt, res = handmade_caption_set()
    dump(os.path.join(out, "captions_gt.json"), gt)
    dump(os.path.join(out, "captions_results.json"), res)
    dump(os.path.join(out, "captions_expected.json"), coco_reference_scores(pkg_parent, gt, res))
    gt, res = random_caption_set(random.Random(11), 200)
    dump(os.path.join(out, "captions_random_gt.json"), gt, None)
    dump(os.path.join(out, "captions_random_results.json"), res, None)
    dump(os.path.join(out, "captions_random_expected.json"), coco_reference_scores(pkg_parent, gt, res))
    # 3. VQA: both versions of vqaEval.py.
    for name, (q, a, r) in (("vqa", handmade_vqa()), ("vqa_random", random_vqa(random.Random(13), 200))):
        dump(os.path.join(out, name + "_questions.json"),
             {"info": {"description": "xmodal metrics fixture"}, "task_type": "Open-Ended", "data_type": "mscoco",
              "data_subtype": "fixture", "license": {}, "questions": q}, None)
        dump(os.path.join(out, name + "_annotations.json"),
             {"info": {"description": "xmodal metrics fixture"}, "data_type": "mscoco", "data_subtype": "fixture",
              "license": {}, "annotations": a}, None)
        dump(os.path.join(out, name + "_results.json"), r, None)
        dump(os.path.join(out, name + "_expected.json"),
             {v: vqa_reference_scores(os.path.join(args.vqa, "vqaEval_%s.py" % v), a, r)
              for v in ("current", "legacy")})
    # 4. Python 2 rounding cases (decimal arithmetic on the exact binary values).
    xs = [0.125, 0.375, 2.675, 1.005, 12.345, 99.995, 0.5, 2.5, 33.33333333333333, 66.66666666666667, 50.0,
          87.125, 12.625, 0.0, 100.0, 45.675, 1e-9, 99.99999]
    dump(os.path.join(out, "py2_round.json"), [[x, py2_round(x, 2)] for x in xs])
    print("wrote fixtures to", out)


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
    if not args.pycocoevalcap or not args.vqa:
        raise SystemExit("--pycocoevalcap and --vqa are needed to write the fixtures")
    make_fixtures(args)


if __name__ == "__main__":
    main()
