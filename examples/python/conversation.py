#!/usr/bin/env python3
"""A multi-turn conversation with the lcio decision service from Python.

    PYTHONPATH=build/client/python python3 examples/python/conversation.py 127.0.0.1:50051

Each turn asks Decide with what is left of the conversation's budgets, runs
the chosen LLM (here: pretends to), reports what the turn really cost when the
server keeps a Report log, and carries the rest of the budgets on."""

import sys
import uuid

import lcio_client

PROMPTS = [
    "What is on the kitchen counter?",
    "Is the stove on?",
    "Write a shopping list for what is missing in the fridge.",
]


def main(target, conversation_id=None):
    # A new id per run: a server remembers a conversation (--conversation_idle_s)
    # and refuses its turn 0 a second time.
    conversation_id = conversation_id or f"example-python-{uuid.uuid4().hex[:12]}"
    with lcio_client.Client(target) as client:
        views = list(client.get_policy().view_names)
        chat = client.conversation(conversation_id, latency_budget_s=30, money_budget_usd=0.05)
        reporting = True
        for turn, prompt in enumerate(PROMPTS):
            # On a device: CLIP similarity of the prompt with each camera view, in [0, 1].
            association = {v: 0.2 + 0.6 * ((i + turn) % len(views)) / max(1, len(views) - 1)
                           for i, v in enumerate(views)}
            try:
                decision = chat.decide(prompt, association)
            except lcio_client.InvalidArgument as error:
                print(f"turn {turn}: the request broke a rule: {error.details}", file=sys.stderr)
                return 1
            except lcio_client.FailedPrecondition as error:
                # Not this conversation's next turn (an id used before), or forgotten.
                print(f"turn {turn}: {error.details}", file=sys.stderr)
                return 1
            cloud = decision.target == lcio_client.pb.TARGET_CLOUD
            uploaded = [v.name for v in decision.upload]
            if reporting:
                try:
                    # score: M4A1's scale, 0 to 9 (mostly 0 to 2)
                    chat.report("an answer", score=1.5 if cloud else 1.0,
                                latency_s=decision.expected_latency_s,
                                cost_usd=decision.expected_money_usd)
                except lcio_client.FailedPrecondition:
                    reporting = False  # the server keeps no Report log
            print(f"turn {turn}: {'cloud' if cloud else 'local'} {uploaded}, task "
                  f"{decision.task}; left {chat.latency_left_s:.2f} s, "
                  f"{chat.money_left_usd:.4f} USD{', reported' if reporting else ''}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: conversation.py HOST:PORT [CONVERSATION_ID]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:3]))
