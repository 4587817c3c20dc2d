module github.com/vmdkmount/vmdkmount

go 1.26
