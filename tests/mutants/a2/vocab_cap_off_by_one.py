# cell: vocabulary
# loses: test_vocabulary
# Keeps index == num_words: one index too many for Embedding(num_words, ...).
def build_word_index(docs):
    counts = Counter(word for doc in docs for word in doc)
    return {word: rank for rank, (word, _) in enumerate(counts.most_common(), start=1)}


def docs_to_sequences(docs, word_index, num_words=None, start_char=1, oov_char=2, index_from=3):
    out = []
    for doc in docs:
        seq = [] if start_char is None else [start_char]
        for word in doc:
            index = word_index[word] + index_from if word in word_index else oov_char
            if num_words is not None and index > num_words:
                index = oov_char
            seq.append(index)
        out.append(seq)
    return out
