#!/usr/bin/env python3
"""Keeps N requests in flight against a llama.cpp llama-server (/completion) and prints output tokens/s.

Usage: python3 bench/llama_server_client.py URL CONCURRENCY N_REQUESTS N_PREDICT
Each request: a ~28-token prompt, N_PREDICT tokens, ignore_eos, greedy, no prompt cache. Standard library
only. Used for the llama-server row of docs/BENCHMARKS.md (serve-bench section).
"""
import json
import sys
import threading
import time
import urllib.request

url = sys.argv[1]; conc = int(sys.argv[2]); n_req = int(sys.argv[3]); n_predict = int(sys.argv[4])
words = "the quick brown fox jumps over the lazy dog while a small bird sings in the old tree near the river bank".split()
def prompt(i):
    return " ".join(words[(i + j) % len(words)] for j in range(24))
lock = threading.Lock(); next_i = [0]; total = [0]; lat = []
def worker():
    while True:
        with lock:
            i = next_i[0]
            if i >= n_req: return
            next_i[0] += 1
        body = json.dumps({"prompt": prompt(i), "n_predict": n_predict, "ignore_eos": True, "temperature": 0,
                           "cache_prompt": False}).encode()
        t0 = time.time()
        r = urllib.request.urlopen(urllib.request.Request(url + "/completion", data=body,
                                   headers={"Content-Type": "application/json"}), timeout=600)
        j = json.loads(r.read())
        with lock:
            total[0] += j["tokens_predicted"]; lat.append(time.time() - t0)
t0 = time.time()
th = [threading.Thread(target=worker) for _ in range(conc)]
[t.start() for t in th]; [t.join() for t in th]
wall = time.time() - t0
print(f"concurrency {conc}: {n_req} requests, {total[0]} tokens in {wall:.2f} s = {total[0]/wall:.1f} tok/s")
