"""A tiny randomly initialised LLaVA (CLIP vision tower + Llama text model), built offline.

For tests and benchmarks of the local VLM path only: it has the real architecture, processor,
chat template and on-disk layout of a ``llava-hf`` checkpoint (``config.json``,
``skyloom.model.safetensors``, ``tokenizer.json``, ``processor_config.json``, ``chat_template.jinja``) but
random weights and a word-level tokenizer built with ``tokenizers``, so its captions are noise.
Nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from skyloom.errors import require_extra

WORDS = ["a", "the", "red", "green", "blue", "yellow", "ball", "cube", "cylinder", "falls", "bounces", "rolls",
         "slides", "on", "floor", "camera", "static", "light", "video", "shows", "small", "large", "scene", "moves",
         "left", "right", "and", "of"]
CHAT_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}USER: {% endif %}"
                 "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}"
                 "{% endfor %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}")


def build_tiny_llava(path: str | os.PathLike, image_size: int = 32, hidden: int = 32, seed: int = 0) -> Path:
    """Write a tiny LLaVA checkpoint + processor to ``path`` and return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    require_extra("transformers", what="the tiny-vlm captioner")
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    specials = ["<pad>", "<unk>", "<s>", "</s>", "<image>", "USER:", "ASSISTANT:"]
    vocab = {w: i for i, w in enumerate(specials + list(WORDS))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", extra_special_tokens={"image_token": "<image>"})
    ip = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    proc = LlavaProcessor(image_processor=ip, tokenizer=fast, patch_size=16, vision_feature_select_strategy="default",
                          chat_template=CHAT_TEMPLATE, image_token="<image>", num_additional_image_tokens=1)
    vc = CLIPVisionConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1, num_attention_heads=2,
                          image_size=image_size, patch_size=16, projection_dim=hidden)
    tc = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                     num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                     bos_token_id=2, eos_token_id=3, pad_token_id=0)
    cfg = LlavaConfig(vision_config=vc, text_config=tc, image_token_index=vocab["<image>"], vision_feature_layer=-1,
                      vision_feature_select_strategy="default")
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(cfg).eval()
    out = Path(path)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out
