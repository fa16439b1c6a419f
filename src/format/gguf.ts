/** GGUF: one import for the reader, the store, the writer and the metadata getters. */
export * from './gguf-reader.js';
export * from './gguf-writer.js';
