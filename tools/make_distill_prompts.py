#!/usr/bin/env python3
"""Writes data/distill/prompts.txt: the varied prompts the default model continues to make the
distillation data of its draft (`make models`). Topics x question/instruction templates for chat,
plus story, essay and encyclopedia-style openings as raw text. Deterministic (fixed seed)."""
import random
import sys

TOPICS = """the ocean; volcanoes; the moon; photosynthesis; the water cycle; honey bees; the Roman Empire;
ancient Egypt; the printing press; electricity; magnets; gravity; the human heart; sleep; vitamins;
bread baking; coffee; tea; chocolate; rice farming; the internet; computers; programming in Python;
sorting algorithms; prime numbers; fractions; the Pythagorean theorem; probability; climate change;
recycling; solar power; wind turbines; electric cars; trains; airplanes; bicycles; the Olympic Games;
football; chess; music theory; the piano; painting with watercolors; photography; poetry; Shakespeare;
fairy tales; dragons; dinosaurs; whales; penguins; cats; dogs; horses; owls; butterflies; forests;
deserts; mountains; rivers; rain; snow; thunderstorms; rainbows; the seasons; gardening; tomatoes;
apples; cooking pasta; healthy breakfast; exercise; running; yoga; friendship; kindness; honesty;
time management; studying for exams; learning a new language; writing a letter; job interviews;
saving money; budgeting; the stock market; small businesses; teamwork; leadership; public speaking;
libraries; museums; castles; pirates; space travel; Mars; black holes; stars; the solar system;
telescopes; microscopes; bacteria; the immune system; washing hands; first aid; fire safety;
earthquakes; maps; the compass; the history of writing; numbers in different cultures; birthdays;
holidays; camping; hiking; a picnic; a rainy day; a lost key; a new neighbor; a school project;
a robot; a talking tree; a magic box; a brave mouse; a tiny dragon; a grumpy cat; a lighthouse""".replace("\n", " ")

CHAT = [
    "What is {t}?", "Explain {t} to a ten-year-old.", "Can you tell me three interesting facts about {t}?",
    "Write a short story about {t}.", "Write a short poem about {t}.", "Why is {t} important?",
    "Give me some tips about {t}.", "What are the pros and cons of {t}?", "Summarize the history of {t}.",
    "How would you describe {t} in one paragraph?", "Write a haiku about {t}.",
    "I am curious about {t}. Where should I start?", "Write a friendly email to a friend about {t}.",
    "List five questions a student might ask about {t}.", "What is a common misconception about {t}?",
]
RAW = [
    "Once upon a time, there was {t}.", "{T} is", "The history of {t} begins", "Here is a short story about {t}.\n\n",
    "Chapter 1\n\nThe morning I first learned about {t},", "Everyone has an opinion about {t}, but",
    "In this article, we will look at {t}.", "Q: What do you know about {t}?\nA:",
    "My favorite thing about {t} is", "Lily and Tom loved {t}. One day,",
]


def main(out_path, n=900, seed=1):
    rng = random.Random(seed)
    topics = [t.strip() for t in TOPICS.split(";") if t.strip()]
    lines = ["# Prompts for the draft model's distillation data (tools/make_distill_prompts.py).",
             "# 'chat: ' lines use the model's chat template; the others are raw text; \\n is a newline."]
    seen = set()
    while len(lines) - 2 < n:
        t = rng.choice(topics)
        if rng.random() < 0.7:
            p = "chat: " + rng.choice(CHAT).format(t=t)
        else:
            p = rng.choice(RAW).format(t=t, T=t[0].upper() + t[1:]).replace("\n", "\\n")
        if p not in seen:
            seen.add(p)
            lines.append(p)
    with open(out_path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/distill/prompts.txt")
