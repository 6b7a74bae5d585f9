SELECT DISTINCT image FROM {db}.containers ORDER BY image
