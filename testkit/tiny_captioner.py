"""A tiny random-weight image-to-text model (a ViT encoder and a BERT decoder), built from configs and saved
with `save_pretrained`, for `DESCRIBER` in tests: nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

WORDS = ("a", "red", "blue", "green", "circle", "square", "star", "on", "the", "left", "background", "bright")


def save_tiny_captioner(folder: Path) -> Path:
    import torch
    from transformers import (
        BertConfig,
        BertTokenizer,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tokenizer = BertTokenizer(vocab={word: index for index, word in enumerate(vocabulary)})
    encoder = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
    )
    decoder = BertConfig(
        vocab_size=len(vocabulary),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        is_decoder=True,
        add_cross_attention=True,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    torch.manual_seed(0)
    model = VisionEncoderDecoderModel(config=config)
    for holder in (model.config, model.generation_config):
        holder.decoder_start_token_id = tokenizer.cls_token_id
        holder.pad_token_id = tokenizer.pad_token_id
        holder.eos_token_id = tokenizer.sep_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder
