"""Fine-tuning: dataset readers, validation, rendering with assistant-only masks, LoRA/QLoRA training, export."""
